//! A real HTTP receiver for webhook deliveries, on loopback: it records every request it
//! gets and answers as the test tells it to (a status, a delay, or never).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the receiver answered; 0 until it has (and for good when the sender hung up
    /// first, or the receiver hangs).
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Behaviour {
    status: AtomicU16,
    delay_ms: AtomicU64,
    hang: AtomicBool,
    log: Mutex<Vec<Received>>,
}

pub struct WebhookReceiver {
    pub port: u16,
    behaviour: Arc<Behaviour>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// A receiver that answers 200 at once.
    pub async fn start() -> Self {
        let behaviour = Arc::new(Behaviour::default());
        behaviour.status.store(200, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/{*path}", post(receive))
            .route("/", post(receive))
            .with_state(behaviour.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            behaviour,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/linktrace", self.port)
    }

    /// What to answer from now on.
    pub fn answer(&self, status: u16) {
        self.behaviour.status.store(status, Ordering::SeqCst);
    }

    /// Wait this long before answering.
    pub fn delay(&self, delay: Duration) {
        self.behaviour
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Never answer (the request is recorded, the connection held).
    pub fn hang(&self, hang: bool) {
        self.behaviour.hang.store(hang, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.behaviour.log.lock().unwrap().clone()
    }

    /// Waits until `done(received)` holds, or `within` passes; returns what arrived.
    pub async fn wait_until(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) || tokio::time::Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(behaviour): State<Arc<Behaviour>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let index = {
        let mut log = behaviour.log.lock().unwrap();
        log.push(Received {
            headers,
            body,
            at,
            answered: 0,
        });
        log.len() - 1
    };
    if behaviour.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        // Dropped here if the sender goes away: the request stays unanswered.
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = behaviour.status.load(Ordering::SeqCst);
    behaviour.log.lock().unwrap()[index].answered = status;
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
