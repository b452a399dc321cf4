//! The physical limit ingest is measured against: a bare axum handler that parses the same
//! JSON body as `POST /api/v1/events`, produces it with the same rdkafka settings as ingest
//! (`KafkaConfig` from the same environment), awaits the broker's acknowledgement and
//! answers 202. No auth, quota, dedup, link check, metrics or tracing layers: what is left
//! is the HTTP server, JSON and the producer. Usage: `bare-produce 127.0.0.1:9191`.

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

async fn events(
    State(sink): State<Arc<KafkaSink>>,
    headers: HeaderMap,
    Json(event): Json<Event>,
) -> (StatusCode, Json<Value>) {
    if !headers.contains_key("x-api-key") || event.event_name.is_empty() {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "success": false })));
    }
    let payload = serde_json::to_vec(&event).expect("an event serialises");
    let produced = sink
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
    let sink = Arc::new(KafkaSink::new(&KafkaConfig::init_from_env()?)?);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(
        listener,
        Router::new()
            .route("/api/v1/events", post(events))
            .with_state(sink),
    )
    .await?;
    Ok(())
}
