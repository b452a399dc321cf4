//! `POST /api/v1/events` (Scale only).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{Endpoint, EntityId, EventName, EventSource, ParseError, ShortCode};
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{self, header_value, JsonBody, RequestError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conversion::{Properties, RevenueField};
use crate::error::IngestError;
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
            raw => EntityId::parse(raw).map(|id| Self(Some(id))),
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
    responses(
        (status = 202, description = "Queued: the broker has the event", body = Queued),
        (status = 200, description = "Deduplicated: this (link, event, entity) was already recorded", body = Deduplicated),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::NotFound,
        errors::PayloadTooLarge, errors::TooManyRequests, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<JsonBody<EventBody>, RequestError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(
                header_value(&headers, &[request::API_KEY]),
                Endpoint::Events,
            )
            .await?;
        let JsonBody(event) = body?;
        ingest_one(&intake, &key, event).await
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
) -> Result<Accepted, IngestError> {
    let draft = EventDraft::from(event);
    if let Some(link) = &draft.link {
        intake.check_link(key, link).await?;
    }
    intake.ingest(key, EventSource::Api, draft).await
}

fn accepted_response(accepted: Accepted) -> Response {
    match accepted {
        Accepted::Queued => (
            StatusCode::ACCEPTED,
            Json(Queued {
                success: Yes,
                queued: Yes,
            }),
        )
            .into_response(),
        Accepted::Deduplicated => (
            StatusCode::OK,
            Json(Deduplicated {
                success: Yes,
                deduplicated: Yes,
            }),
        )
            .into_response(),
    }
}
