//! `POST /api/v1/events` (Scale only).

use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use linktrace_domain::{Endpoint, EntityId, EventName, EventSource, ParseError, ShortCode};
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, PresentedKey, RequestError, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conversion::{Properties, RevenueField};
use crate::error::IngestError;
use crate::idempotency::IdempotentRequest;
use crate::intake::{Accepted, EventDraft, Intake};

/// One post-install event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    pub link_short_code: ShortCode,
    pub event_name: EventName,
    /// Enables deduplication of (link, event, entity); empty means none.
    #[serde(default)]
    pub entity_id: Option<OptionalEntityId>,
    /// Free-form JSON object (at most 16 KB serialised), kept with the event.
    #[serde(default)]
    pub properties: Option<Properties>,
    /// What the conversion earned; summed per currency by analytics.
    #[serde(default)]
    pub revenue: Option<RevenueField>,
    /// When the event happened, if not now (a backfill): ISO-8601, at most 30 days in the
    /// past and 5 minutes in the future. Every read uses it; the quota month stays the month
    /// the event is received.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

/// The contract bounds `entityId` only by length, and storage keeps "no entity" as an empty
/// string: an empty one is accepted as none (no deduplication), never as a key that would
/// fold every such event into one.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct OptionalEntityId(Option<EntityId>);

impl TryFrom<String> for OptionalEntityId {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        match raw.as_str() {
            "" => Ok(Self(None)),
            _ => EntityId::parse_owned(raw).map(|id| Self(Some(id))),
        }
    }
}

impl utoipa::PartialSchema for OptionalEntityId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            Some("^[^\\u0000]*$"),
            None,
            Some(EntityId::MAX_LEN),
            "your id for the event; makes it deduplicable (empty: none)",
        )
    }
}

impl ToSchema for OptionalEntityId {}

impl From<EventBody> for EventDraft {
    fn from(body: EventBody) -> Self {
        EventDraft {
            link: Some(body.link_short_code),
            event_name: body.event_name,
            entity: body.entity_id.and_then(|id| id.0),
            user_id: None,
            properties: body.properties.map(|p| serde_json::Value::Object(p.0)),
            revenue: body.revenue.map(|r| r.0),
            happened_at: body.timestamp.map(|t| t.0),
            idempotent: None,
        }
    }
}

/// `202`: the broker has the event.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub success: Yes,
    pub queued: Yes,
}

/// `200`: this (link, event, entity) was recorded before; nothing is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deduplicated {
    pub success: Yes,
    pub deduplicated: Yes,
}

/// Ingest one post-install event (Scale plan)
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "ingestEvent",
    tag = "ingest",
    request_body = EventBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters; a repeat within 24 h gets the first answer (Idempotent-Replayed: true)"),
    ),
    responses(
        (status = 202, description = "Queued: the broker has the event", body = Queued),
        (status = 200, description = "Deduplicated: this (link, event, entity) was already recorded", body = Deduplicated),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::NotFound,
        errors::IdempotencyKeyReused, errors::PayloadTooLarge, errors::TooManyRequests, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(intake): State<Arc<Intake>>,
    presented: PresentedKey,
    idempotent: Option<Extension<IdempotentRequest>>,
    body: Result<JsonBody<EventBody>, RequestError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(presented.secret(), Endpoint::Events)
            .await?;
        let JsonBody(event) = body?;
        let place = idempotent.map(|Extension(request)| (request, 0));
        ingest_one(&intake, &key, event, place).await
    }
    .await;
    match outcome {
        Ok(accepted) => accepted_response(accepted),
        Err(error) => error.into_response(),
    }
}

/// Takes one valid event through the intake.
pub async fn ingest_one(
    intake: &Intake,
    key: &KeyOwner,
    event: EventBody,
    idempotent: Option<(IdempotentRequest, usize)>,
) -> Result<Accepted, IngestError> {
    let draft = EventDraft {
        idempotent,
        ..EventDraft::from(event)
    };
    if let Some(link) = &draft.link {
        intake.check_link(key, link).await?;
    }
    intake.ingest(key, EventSource::Api, draft).await
}

fn accepted_response(accepted: Accepted) -> Response {
    /// The two answers, serialised once from their types (`Json` would serialise and
    /// allocate again on every request).
    static QUEUED: LazyLock<&'static [u8]> = LazyLock::new(|| {
        serialised(&Queued {
            success: Yes,
            queued: Yes,
        })
    });
    static DEDUPLICATED: LazyLock<&'static [u8]> = LazyLock::new(|| {
        serialised(&Deduplicated {
            success: Yes,
            deduplicated: Yes,
        })
    });
    let (status, body) = match accepted {
        Accepted::Queued => (StatusCode::ACCEPTED, *QUEUED),
        Accepted::Deduplicated => (StatusCode::OK, *DEDUPLICATED),
    };
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        Bytes::from_static(body),
    )
        .into_response()
}

fn serialised(answer: &impl Serialize) -> &'static [u8] {
    let text = serde_json::to_vec(answer).expect("an answer serialises");
    Vec::leak(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The answers made once are the documented types, as JSON, with their status.
    #[tokio::test]
    async fn accepted_answers_are_their_types_serialised() {
        let cases = [
            (
                Accepted::Queued,
                StatusCode::ACCEPTED,
                json!({ "success": true, "queued": true }),
            ),
            (
                Accepted::Deduplicated,
                StatusCode::OK,
                json!({ "success": true, "deduplicated": true }),
            ),
        ];
        for (accepted, status, body) in cases {
            let response = accepted_response(accepted);
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers().get(CONTENT_TYPE).unwrap(),
                "application/json"
            );
            let bytes = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(answer, body);
        }
    }
}
