//! The public API's OpenAPI description (`docs/openapi.json`), served by ingest and api at
//! `/openapi.json`. `integration/tests/openapi.rs` keeps it true.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub async fn handler() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}
