//! A DNS server on loopback for tests (these machines have no outside DNS): it answers TXT
//! questions from a table the test fills, over UDP, NXDOMAIN for any other name. Encoded
//! and decoded with `hickory-proto`, the wire format the api's resolver speaks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

pub struct TxtServer {
    pub address: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TxtServer {
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let address = socket.local_addr().unwrap();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let table = records.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let Ok(question) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                let answer = Self::answer(&question, &table.lock().unwrap());
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Self {
            address,
            records,
            task,
        }
    }

    fn answer(question: &Message, table: &HashMap<String, Vec<String>>) -> Message {
        let mut answer = Message::new();
        answer
            .set_id(question.id())
            .set_message_type(MessageType::Response)
            .set_op_code(question.op_code())
            .set_recursion_desired(question.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        let mut found = false;
        for query in question.queries() {
            answer.add_query(query.clone());
            let name = query
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if let Some(texts) = table.get(&name) {
                found = true;
                if query.query_type() == RecordType::TXT {
                    for text in texts {
                        answer.add_answer(Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::TXT(TXT::new(vec![text.clone()])),
                        ));
                    }
                }
            }
        }
        answer.set_response_code(if found {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        });
        answer
    }

    /// Publishes a TXT record `text` at `name`.
    pub fn publish(&self, name: &str, text: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(text.to_owned());
    }
}

impl Drop for TxtServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
