//! The public API's OpenAPI description. Each service's routes carry their own
//! `#[utoipa::path]` and are registered through `utoipa_axum`, so a route and its
//! description are one declaration; `linktrace-openapi` (integration crate) joins the
//! services' parts with [`finish`] into `docs/openapi.json`, which both services serve at
//! `/openapi.json` and a test keeps equal to what the code generates.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use linktrace_domain::ErrorEnvelope;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, RefOr, Response, ResponseBuilder};

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub async fn handler() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

/// Security scheme names the operations refer to.
pub const API_KEY: &str = "apiKey";
pub const LINKRUNNER_KEY: &str = "linkrunnerKey";
pub const ADMIN_TOKEN: &str = "adminToken";

/// The whole document from the services' parts: title, security schemes, and the 405 every
/// operation can answer (the routers' method fallback).
pub fn finish(parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut document = OpenApi::default();
    for part in parts {
        document.merge(part);
    }
    document.info = InfoBuilder::new()
        .title("LinkTrace")
        .version("1")
        .description(Some(
            "Referral links, install attribution and post-install events. One base URL for \
             every endpoint; every error is the envelope {success: false, message, code, resetsOn}.",
        ))
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    components.add_security_scheme(
        LINKRUNNER_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("linkrunner-key"))),
    );
    components.add_security_scheme(
        ADMIN_TOKEN,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    for (path, item) in document.paths.paths.iter_mut() {
        let limited = path.starts_with("/api/") || path.starts_with("/admin/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .entry("405".to_owned())
                .or_insert_with(|| envelope_response("Method not allowed"));
            if limited {
                operation
                    .responses
                    .responses
                    .entry("429".to_owned())
                    .or_insert_with(|| {
                        envelope_response(
                            "Too many requests for this key, or failed authentications from \
                             this address (RATE_LIMITED, with a Retry-After header)",
                        )
                    });
            }
        }
    }
    document
}

fn envelope_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                )))
                .build(),
        )
        .build()
        .into()
}

/// The error answers operations list in `responses(...)`, each the envelope with its code.
pub mod errors {
    use super::ErrorEnvelope;

    /// Missing or invalid fields, malformed JSON or wrong content type (VALIDATION_ERROR)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400)]
    pub struct BadRequest(pub ErrorEnvelope);

    /// Missing or invalid key (UNAUTHORIZED)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401)]
    pub struct Unauthorized(pub ErrorEnvelope);

    /// The endpoint needs the Scale plan (PLAN_UPGRADE_REQUIRED)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 403)]
    pub struct PlanUpgradeRequired(pub ErrorEnvelope);

    /// Not found (LINK_NOT_FOUND for links, also for another account's link)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404)]
    pub struct NotFound(pub ErrorEnvelope);

    /// The custom short code is taken (SHORT_CODE_TAKEN)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 409)]
    pub struct ShortCodeTaken(pub ErrorEnvelope);

    /// The domain is held by another account (DOMAIN_TAKEN)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 409)]
    pub struct DomainTaken(pub ErrorEnvelope);

    /// The Idempotency-Key was used with another request body (IDEMPOTENCY_KEY_REUSED)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 422)]
    pub struct IdempotencyKeyReused(pub ErrorEnvelope);

    /// Request body too large (PAYLOAD_TOO_LARGE)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413)]
    pub struct PayloadTooLarge(pub ErrorEnvelope);

    /// Monthly event quota exhausted (QUOTA_EXCEEDED, with resetsOn), or too many requests
    /// for this key (RATE_LIMITED, with a Retry-After header)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 429)]
    pub struct TooManyRequests(pub ErrorEnvelope);

    /// A dependency (broker, database) cannot take the request (UNAVAILABLE)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503)]
    pub struct Unavailable(pub ErrorEnvelope);
}

/// `true`, always: the `success` of a successful answer and similar flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Yes;

impl serde::Serialize for Yes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

impl utoipa::PartialSchema for Yes {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Boolean)
            .enum_values(Some([true]))
            .into()
    }
}

impl utoipa::ToSchema for Yes {}
