//! The operational routes every service mounts, and serving a router until shutdown.

use std::future::Future;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use tokio::net::TcpListener;

use crate::body_limit::BodyLimitLayer;
use crate::health::{self, Readiness};
use crate::http_metrics::{HttpMetricsLayer, RouteTemplates};
use crate::request_id::RequestIdLayer;
use crate::{metrics, openapi};

const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
const OPENAPI: &str = "/openapi.json";

/// The paths of [`operational_routes`], for a service's [`RouteTemplates`].
pub const OPERATIONAL_PATHS: [&str; 4] = [HEALTHZ, READYZ, METRICS, OPENAPI];

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
pub fn operational_routes(readiness: Readiness) -> Router {
    Router::new()
        .route(HEALTHZ, get(health::healthz))
        .route(READYZ, get(health::readyz))
        .with_state(readiness)
        .route(METRICS, get(metrics::handler))
        .route(OPENAPI, get(openapi::handler))
}

/// Serves `router` (whose routes are `routes`) on `listener` as [`app`], until `shutdown`
/// resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    routes: RouteTemplates,
    body_limit: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(router, routes, body_limit);
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
    routes: RouteTemplates,
    body_limit: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(router, routes, body_limit);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(
            service,
        ),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// `router` inside what every request gets before it is routed: a request id (given or
/// made) and its span, the request metrics (labelled by `routes`), a panic caught into the
/// 500 envelope, and a body limit of `body_limit` bytes unless a route sets its own
/// `DefaultBodyLimit` (given only to bodies that could exceed it: `body_limit`). Each
/// once, around the routing: a layer on the router (`Router::layer`) wraps every route,
/// and axum boxes and clones each such route per request (`bench/profile.sh` counted 88
/// allocations a request with all of them there). A service of its own, not a `Router` (a
/// router around it would route every request twice).
pub fn app(
    router: Router,
    routes: RouteTemplates,
    body_limit: usize,
) -> impl tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(RequestIdLayer)
        .layer(HttpMetricsLayer::new(routes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(BodyLimitLayer::max(body_limit))
        .service(router)
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
