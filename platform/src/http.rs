//! The operational routes every service mounts, and serving a router until shutdown.

use std::future::Future;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

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

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
