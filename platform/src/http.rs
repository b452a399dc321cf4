//! The operational routes every service mounts, and serving a router until shutdown.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use tokio::net::TcpListener;
use tower::Layer;

use crate::health::{self, Readiness};
use crate::{metrics, openapi};

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
pub fn operational_routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(readiness)
        .route("/metrics", get(metrics::handler))
        .route("/openapi.json", get(openapi::handler))
}

/// Serves `router` on `listener`, inside what every request gets first (a request id, its
/// span, a caught panic: [`crate::request_id::layer`]), until `shutdown` resolves, then
/// drains in-flight requests. A route reads a body of at most `body_limit` bytes unless it
/// sets its own `DefaultBodyLimit` (set here, around the router, it costs no per-route
/// layer: `bench/profile.sh`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    body_limit: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = what_every_request_gets(router, body_limit);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(service),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// [`serve`], and each request carries its peer's address (`ConnectInfo<SocketAddr>`), for
/// routes that read it (only those: it is one more step and extension per request).
pub async fn serve_with_peer_addresses(
    listener: TcpListener,
    router: Router,
    body_limit: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = what_every_request_gets(router, body_limit);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(
            service,
        ),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// `router` inside the request id stack, with its default body limit.
fn what_every_request_gets(
    router: Router,
    body_limit: usize,
) -> impl tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    crate::request_id::layer(DefaultBodyLimit::max(body_limit).layer(router))
}

/// The body limit of a service none of whose routes reads a body.
pub const NO_BODIES: usize = 0;

/// The port `listener` is bound to (tests bind port 0 and ask).
pub fn bound_port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or_default()
}

/// Unknown paths answer with the error envelope too.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorEnvelope::new(ErrorCode::NotFound, "no such endpoint")),
    )
        .into_response()
}

/// A known path with the wrong method answers with the error envelope too.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorEnvelope::new(
            ErrorCode::ValidationError,
            "method not allowed on this endpoint",
        )),
    )
        .into_response()
}

/// A panic in a handler still answers with the envelope (and is logged), never an empty 500.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(ErrorEnvelope::new(
            ErrorCode::InternalError,
            "internal error",
        )),
    )
        .into_response()
}
