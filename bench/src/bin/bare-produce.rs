//! The physical limit ingest is measured against: a bare axum handler that parses the same
//! JSON body as `POST /api/v1/events`, produces it with the same rdkafka settings as ingest
//! (`KafkaConfig` from the same environment), awaits the broker's acknowledgement and
//! answers 202. No auth, quota, dedup, link check, metrics or tracing layers: what is left
//! is the HTTP server, JSON and the producer. Usage: `bare-produce 127.0.0.1:9191`.
//!
//! `BARE_PAD_BYTES=N` pads each produced value to N bytes (a `pad` field), so that the
//! broker's cost of a record as large as ingest's can be told from ingest's own
//! (`LOAD_PADDED_LIMIT_BYTES` of `bench/load-profile.sh`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use envconfig::Envconfig;
use linktrace_platform::kafka::{KafkaConfig, KafkaSink};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    link_short_code: String,
    event_name: String,
    entity_id: Option<String>,
}

struct Limit {
    sink: KafkaSink,
    pad_to: usize,
}

/// `payload` (a JSON object) grown to `len` bytes by a `pad` field, if it is shorter.
fn padded(mut payload: Vec<u8>, len: usize) -> Vec<u8> {
    const FRAME: usize = r#","pad":""#.len() + r#""}"#.len() - "}".len();
    if let Some(room) = len.checked_sub(payload.len() + FRAME) {
        payload.pop();
        payload.extend_from_slice(br#","pad":""#);
        payload.resize(payload.len() + room, b'x');
        payload.extend_from_slice(br#""}"#);
    }
    payload
}

async fn events(
    State(limit): State<Arc<Limit>>,
    headers: HeaderMap,
    Json(event): Json<Event>,
) -> (StatusCode, Json<Value>) {
    if !headers.contains_key("x-api-key") || event.event_name.is_empty() {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "success": false })));
    }
    let payload = padded(
        serde_json::to_vec(&event).expect("an event serialises"),
        limit.pad_to,
    );
    let produced = limit
        .sink
        .send_raw(
            Some(event.link_short_code.as_bytes()),
            Some(&payload),
            rdkafka::message::OwnedHeaders::new(),
        )
        .await;
    match produced {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "success": true, "queued": true })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "success": false })),
        ),
    }
}

/// The same allocator as ingest, so the comparison is of the work, not of malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9191".into());
    let limit = Arc::new(Limit {
        sink: KafkaSink::new(&KafkaConfig::init_from_env()?)?,
        pad_to: std::env::var("BARE_PAD_BYTES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    });
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(
        listener,
        Router::new()
            .route("/api/v1/events", post(events))
            .with_state(limit),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn pads_to_the_length_asked_and_stays_json() {
        let event = br#"{"eventName":"purchase"}"#.to_vec();
        let grown = padded(event.clone(), 329);
        assert_eq!(grown.len(), 329);
        let value: serde_json::Value = serde_json::from_slice(&grown).unwrap();
        assert_eq!(value["eventName"], "purchase");
        assert_eq!(padded(event.clone(), 10), event, "never shortened");
        assert_eq!(padded(event.clone(), 0), event);
    }
}
