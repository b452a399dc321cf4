//! `POST /api/v1/events` (Scale only).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{Endpoint, EntityId, EventName, EventSource, ShortCode};
use serde_json::{json, Map, Value};

use crate::error::IngestError;
use crate::intake::{Accepted, EventDraft, Intake};
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::request::{
    field_error, header_value, optional_str, required_str, BodyError, JsonObject,
};

pub async fn create(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(header_value(&headers, &["x-api-key"]), Endpoint::Events)
            .await?;
        let JsonObject(object) = body?;
        ingest_one(&intake, &key, &object).await
    }
    .await;
    match outcome {
        Ok(accepted) => accepted_response(accepted),
        Err(error) => error.into_response(),
    }
}

/// Validates one event object and takes it through the intake.
pub async fn ingest_one(
    intake: &Intake,
    key: &KeyOwner,
    object: &Map<String, Value>,
) -> Result<Accepted, IngestError> {
    let draft = parse_event(object)?;
    if let Some(link) = &draft.link {
        intake.check_link(key, link).await?;
    }
    intake.ingest(key, EventSource::Api, draft).await
}

fn parse_event(object: &Map<String, Value>) -> Result<EventDraft, IngestError> {
    let link = ShortCode::parse(required_str(object, "linkShortCode")?)
        .map_err(field_error("linkShortCode"))?;
    let event_name =
        EventName::parse(required_str(object, "eventName")?).map_err(field_error("eventName"))?;
    // The contract bounds `entityId` only by length, and storage keeps "no entity" as an
    // empty string: an empty one is accepted as none (no deduplication), never as a key that
    // would fold every such event into one.
    let entity = optional_str(object, "entityId")?
        .filter(|raw| !raw.is_empty())
        .map(EntityId::parse)
        .transpose()
        .map_err(field_error("entityId"))?;
    Ok(EventDraft {
        link: Some(link),
        event_name,
        entity,
        user_id: None,
        properties: None,
    })
}

pub fn accepted_body(accepted: Accepted) -> (StatusCode, Value) {
    match accepted {
        Accepted::Queued => (
            StatusCode::ACCEPTED,
            json!({ "success": true, "queued": true }),
        ),
        Accepted::Deduplicated => (
            StatusCode::OK,
            json!({ "success": true, "deduplicated": true }),
        ),
    }
}

fn accepted_response(accepted: Accepted) -> Response {
    let (status, body) = accepted_body(accepted);
    (status, Json(body)).into_response()
}
