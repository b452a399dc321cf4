use tracing_subscriber::{fmt, EnvFilter};

/// Structured logs on stdout: JSON when `LOG_FORMAT=json`, readable text otherwise. Each
/// line carries the fields of its span (a request's `request_id`, see `request_id`).
/// Filtered by `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let result = if json {
        fmt()
            .with_env_filter(filter)
            .json()
            .with_current_span(true)
            .try_init()
    } else {
        fmt().with_env_filter(filter).try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "telemetry initialised");
    }
}
