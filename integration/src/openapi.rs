//! The whole OpenAPI description, from ingest's and the api's routes (this crate is the one
//! that sees both services).

/// Where the generated document lives; both services serve it at `/openapi.json`.
pub const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

/// The document as `docs/openapi.json` holds it: pretty JSON, one trailing newline.
pub fn generate() -> String {
    let document = linktrace_platform::openapi::finish([
        linktrace_ingest::startup::openapi(),
        linktrace_api::startup::openapi(),
    ]);
    let mut text = document
        .to_pretty_json()
        .expect("an OpenAPI document serialises");
    text.push('\n');
    text
}
