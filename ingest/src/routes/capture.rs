//! `POST /api/v1/capture-event`: Linkrunner-compatible capture, authenticated by the
//! `linkrunner-key` header. The event is attributed to the link that drove the user's
//! install, or recorded as organic.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{Endpoint, EventName, EventSource, ShortCode};
use serde_json::{json, Value};

use crate::error::IngestError;
use crate::intake::{EventDraft, Intake};
use linktrace_platform::request::{field_error, header_value, required_str, BodyError, JsonObject};

/// The longest `user_id` we keep.
const MAX_USER_ID: usize = 255;

pub async fn create(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Response {
    let outcome = async {
        let secret = header_value(&headers, &["linkrunner-key", "x-api-key"]);
        let key = intake.authenticate(secret, Endpoint::CaptureEvent).await?;
        let JsonObject(object) = body?;
        let event_name = EventName::parse(required_str(&object, "event_name")?)
            .map_err(field_error("event_name"))?;
        let user_id = required_str(&object, "user_id")?;
        if user_id.is_empty() || user_id.chars().count() > MAX_USER_ID {
            return Err(IngestError::validation(format!(
                "user_id must be 1-{MAX_USER_ID} characters"
            )));
        }
        let properties = match object.get("event_data") {
            None | Some(Value::Null) => None,
            Some(data @ Value::Object(_)) => Some(data.clone()),
            Some(_) => return Err(IngestError::validation("event_data must be a JSON object")),
        };
        let link = intake
            .directory
            .install_link(key.account_id, user_id)
            .await?
            .and_then(|code| ShortCode::parse(&code).ok());
        let draft = EventDraft {
            link,
            event_name,
            entity: None,
            user_id: Some(user_id.to_owned()),
            properties,
        };
        intake.ingest(&key, EventSource::Capture, draft).await
    }
    .await;
    match outcome {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({ "msg": "Event capture request received!", "status": 200, "data": null })),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}
