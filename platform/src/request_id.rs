//! A request id that follows a request: taken from `X-Request-Id` (the gateway sets one) or
//! generated, returned on the answer, recorded on the request's span (so every log line
//! of the request carries it), and put on the Kafka message of every event the request
//! produces (header `linktrace-request-id`).

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub const HEADER: &str = "x-request-id";
/// The Kafka message header that carries it.
pub const KAFKA_HEADER: &str = "linktrace-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Adds request ids and a tracing span per request to every route of `router`.
pub fn layer(router: Router) -> Router {
    let header = HeaderName::from_static(HEADER);
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(header.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = request
                            .headers()
                            .get(HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(""),
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(header))
            .layer(axum::middleware::from_fn(scope)),
    )
}

/// Makes the id readable by [`current`] for everything the handler does.
async fn scope(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    CURRENT.scope(id, next.run(request)).await
}
