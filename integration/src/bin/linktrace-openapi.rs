//! `linktrace-openapi`: writes `docs/openapi.json`, the public API's OpenAPI description,
//! generated from the services' routes and request/response types. Run it after changing
//! a route or a type; `integration/tests/it/openapi.rs` fails while the file is stale.
//!
//! ```text
//! cargo run -p linktrace-integration --bin linktrace-openapi
//! ```

fn main() -> anyhow::Result<()> {
    let path = linktrace_integration::openapi::DOCUMENT_PATH;
    std::fs::write(path, linktrace_integration::openapi::generate())?;
    eprintln!("wrote {path}");
    Ok(())
}
