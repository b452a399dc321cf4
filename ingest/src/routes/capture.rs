//! `POST /api/v1/capture-event`: Linkrunner-compatible capture, authenticated by the
//! `linkrunner-key` header. The event is attributed to the link that drove the user's
//! install, or recorded as organic.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::{Extension, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{Endpoint, EventName, EventSource, ShortCode};
use linktrace_platform::openapi::errors;
use linktrace_platform::request::{self, JsonBody, PresentedKey, RequestError, Text};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::conversion;
use crate::idempotency::IdempotentRequest;
use crate::intake::{EventDraft, Intake};

/// Linkrunner's own header for the key, taken before `x-api-key`.
const LINKRUNNER_KEY: axum::http::HeaderName =
    axum::http::HeaderName::from_static("linkrunner-key");

/// The key a capture call presents: in [`LINKRUNNER_KEY`], else in `x-api-key`.
pub struct CaptureKey(PresentedKey);

impl<S: Sync> FromRequestParts<S> for CaptureKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(PresentedKey::from_headers(
            &parts.headers,
            &[LINKRUNNER_KEY, request::API_KEY],
        )))
    }
}

/// Linkrunner's capture body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CaptureBody {
    pub event_name: EventName,
    /// The app's id of the user; the event is attributed through this user's install.
    pub user_id: Text<1, 255>,
    /// Free-form JSON, kept with the event; never a reason to refuse it. When `amount`
    /// (number, major units) and `currency` (ISO 4217) form a valid pair they are also the
    /// event's revenue.
    #[serde(default)]
    pub event_data: Option<Map<String, Value>>,
}

/// The answer Linkrunner gives, to the letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Captured {
    #[schema(pattern = "^Event capture request received!$")]
    pub msg: &'static str,
    #[schema(minimum = 200, maximum = 200)]
    pub status: u16,
    #[schema(schema_with = always_null)]
    pub data: Option<()>,
}

fn always_null() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .build()
}

/// Linkrunner-compatible event capture (header linkrunner-key)
#[utoipa::path(
    post,
    path = "/api/v1/capture-event",
    operation_id = "captureEvent",
    tag = "ingest",
    request_body = CaptureBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters; a repeat within 24 h gets the first answer (Idempotent-Replayed: true)"),
    ),
    responses(
        (status = 201, description = "{\"msg\": \"Event capture request received!\", \"status\": 200, \"data\": null}", body = Captured),
        errors::BadRequest, errors::Unauthorized, errors::IdempotencyKeyReused, errors::PayloadTooLarge,
        errors::TooManyRequests, errors::Unavailable,
    ),
    security(("linkrunnerKey" = [])),
)]
pub async fn create(
    State(intake): State<Arc<Intake>>,
    CaptureKey(presented): CaptureKey,
    idempotent: Option<Extension<IdempotentRequest>>,
    body: Result<JsonBody<CaptureBody>, RequestError>,
) -> Response {
    let outcome = async {
        let key = intake
            .authenticate(presented.secret(), Endpoint::CaptureEvent)
            .await?;
        let JsonBody(capture) = body?;
        let revenue = capture
            .event_data
            .as_ref()
            .and_then(conversion::from_event_data);
        let user_id = capture.user_id.into_string();
        let link = intake
            .directory
            .install_link(key.account_id, key.environment, &user_id)
            .await?
            .and_then(|code| ShortCode::parse(&code).ok());
        let draft = EventDraft {
            link,
            event_name: capture.event_name,
            entity: None,
            user_id: Some(user_id),
            properties: capture.event_data.map(Value::Object),
            revenue,
            happened_at: None,
            idempotent: idempotent.map(|Extension(request)| (request, 0)),
        };
        intake.ingest(&key, EventSource::Capture, draft).await
    }
    .await;
    match outcome {
        Ok(_) => (
            StatusCode::CREATED,
            Json(Captured {
                msg: "Event capture request received!",
                status: 200,
                data: None,
            }),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}
