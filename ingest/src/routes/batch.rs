//! `POST /api/v1/events/batch`: up to 1,000 events (1 MiB) in one request, one result per
//! event in order. Each event is judged on its own, quota included.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use linktrace_domain::Endpoint;
use serde_json::{json, Value};

use crate::error::IngestError;
use crate::intake::Intake;
use crate::routes::events::{accepted_body, ingest_one};
use linktrace_platform::request::{header_value, BodyError, JsonObject};

pub const MAX_EVENTS: usize = 1000;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How many events of one batch are in flight at once.
const CONCURRENCY: usize = 64;

pub async fn create(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(header_value(&headers, &["x-api-key"]), Endpoint::Events)
            .await?;
        let JsonObject(mut object) = body?;
        let events = match object.remove("events") {
            Some(Value::Array(events)) => events,
            _ => {
                return Err(IngestError::validation(
                    "events must be an array of event objects",
                ))
            }
        };
        if events.is_empty() || events.len() > MAX_EVENTS {
            return Err(IngestError::validation(format!(
                "events must hold 1 to {MAX_EVENTS} events"
            )));
        }
        let key = Arc::new(key);
        let results: Vec<Value> = futures::stream::iter(events.into_iter().enumerate())
            .map(|(index, event)| {
                let intake = Arc::clone(&intake);
                let key = Arc::clone(&key);
                async move {
                    let outcome = match event {
                        Value::Object(object) => ingest_one(&intake, &key, &object).await,
                        _ => Err(IngestError::validation("each event must be a JSON object")),
                    };
                    match outcome {
                        Ok(accepted) => {
                            let (status, mut body) = accepted_body(accepted);
                            body["index"] = index.into();
                            body["status"] = status.as_u16().into();
                            body
                        }
                        Err(error) => json!({
                            "index": index,
                            "status": error.status().as_u16(),
                            "error": error.envelope(),
                        }),
                    }
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let queued = results.iter().filter(|r| r["status"] == 202).count();
        Ok(json!({ "success": true, "queued": queued, "results": results }))
    }
    .await;
    match outcome {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}
