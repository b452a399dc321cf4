//! The baseline ingest is measured against: a bare axum handler that parses the same JSON
//! body as `POST /api/v1/events` (and checks the same header is present) and answers 202,
//! with no auth look-up, quota, dedup or Kafka. Usage: `bare-ingest 127.0.0.1:9190`.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Event {
    link_short_code: String,
    event_name: String,
    entity_id: Option<String>,
}

async fn events(headers: HeaderMap, Json(event): Json<Event>) -> (StatusCode, Json<Value>) {
    if !headers.contains_key("x-api-key") || event.event_name.is_empty() {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "success": false })));
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "success": true, "queued": true })),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9190".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(
        listener,
        Router::new().route("/api/v1/events", post(events)),
    )
    .await?;
    Ok(())
}
