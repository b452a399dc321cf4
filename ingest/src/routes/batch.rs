//! `POST /api/v1/events/batch`: up to 1,000 events (1 MiB) in one request, one result per
//! event in order. Each event is judged on its own, quota included.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use linktrace_domain::{Endpoint, ErrorEnvelope};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{from_json, JsonBody, PresentedKey, RequestError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::IngestError;
use crate::idempotency::IdempotentRequest;
use crate::intake::{Accepted, Intake};
use crate::routes::events::{ingest_one, EventBody};

pub const MAX_EVENTS: usize = 1000;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How many events of one batch are in flight at once.
const CONCURRENCY: usize = 64;

/// Up to 1,000 events; each is read and judged on its own.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchBody {
    #[schema(value_type = Vec<EventBody>, min_items = 1, max_items = 1000)]
    pub events: Vec<Box<RawValue>>,
}

/// What happened to one event of the batch: its own status and body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResult {
    /// The event's position in `events`.
    pub index: usize,
    /// 202 queued, 200 deduplicated, else the error's status.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<Yes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<Yes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated: Option<Yes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEnvelope>,
}

impl EventResult {
    fn new(index: usize, outcome: Result<Accepted, IngestError>) -> Self {
        let mut result = EventResult {
            index,
            status: 0,
            success: None,
            queued: None,
            deduplicated: None,
            error: None,
        };
        match outcome {
            Ok(Accepted::Queued) => {
                result.status = StatusCode::ACCEPTED.as_u16();
                result.success = Some(Yes);
                result.queued = Some(Yes);
            }
            Ok(Accepted::Deduplicated) => {
                result.status = StatusCode::OK.as_u16();
                result.success = Some(Yes);
                result.deduplicated = Some(Yes);
            }
            Err(error) => {
                result.status = error.status().as_u16();
                result.error = Some(error.envelope());
            }
        }
        result
    }
}

/// The batch's answer: how many events were queued, and every event's result in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    pub success: Yes,
    pub queued: usize,
    pub results: Vec<EventResult>,
}

/// Ingest up to 1,000 events (1 MiB); one result per event, in order
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    operation_id = "ingestEventBatch",
    tag = "ingest",
    request_body = BatchBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters; a repeat within 24 h gets the first answer (Idempotent-Replayed: true)"),
    ),
    responses(
        (status = 200, description = "Per-event results", body = BatchResults),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::IdempotencyKeyReused, errors::PayloadTooLarge, errors::TooManyRequests, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(intake): State<Arc<Intake>>,
    presented: PresentedKey,
    idempotent: Option<Extension<IdempotentRequest>>,
    body: Result<JsonBody<BatchBody>, RequestError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(presented.secret(), Endpoint::Events)
            .await?;
        let JsonBody(BatchBody { events }) = body?;
        if events.is_empty() || events.len() > MAX_EVENTS {
            return Err(IngestError::validation(format!(
                "events must hold 1 to {MAX_EVENTS} events"
            )));
        }
        // The rate counts events: the request took one unit, each further event takes one.
        intake.take_rate(&key, events.len() as u32 - 1)?;
        let key = Arc::new(key);
        let results: Vec<EventResult> = futures::stream::iter(events.into_iter().enumerate())
            .map(|(index, event)| {
                let intake = Arc::clone(&intake);
                let key = Arc::clone(&key);
                async move {
                    let place = idempotent
                        .as_ref()
                        .map(|Extension(request)| (*request, index));
                    let outcome = match from_json::<EventBody>(event.get().as_bytes()) {
                        Ok(event) => ingest_one(&intake, &key, event, place).await,
                        Err(RequestError::NotAnObject) => {
                            Err(IngestError::validation("each event must be a JSON object"))
                        }
                        Err(refused) => Err(refused.into()),
                    };
                    EventResult::new(index, outcome)
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let queued = results
            .iter()
            .filter(|r| r.status == StatusCode::ACCEPTED.as_u16())
            .count();
        Ok(BatchResults {
            success: Yes,
            queued,
            results,
        })
    }
    .await;
    match outcome {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}
