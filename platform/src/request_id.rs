//! A request id that follows a request: taken from `X-Request-Id` (the gateway sets one) or
//! generated, returned on the answer, recorded on the request's span (so every log line
//! of the request carries it), and written into every event the request produces
//! (`EventRecord::request_id`, read here with [`current`]).

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|id| (!id.is_empty()).then(|| id.clone()))
        .ok()
        .flatten()
}

/// Wraps the whole of a router (once, around the routing, not around each route: a layer
/// on every route is boxed and cloned per request at each step — `bench/profile.sh` counted
/// 88 allocations a request with them there) in what every request gets before it is
/// routed: a request id, a tracing span, the id on the answer and readable by
/// [`current`], and a panic caught into the 500 envelope. A service of its own, not a
/// `Router` (a router around it would route every request twice).
pub fn layer<S>(
    inner: S,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    let header = HeaderName::from_static(HEADER);
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
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
        .layer(ScopeLayer)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            crate::http::panic_response,
        ))
        .service(inner)
}

/// Makes the id readable by [`current`] for everything the handler does.
#[derive(Debug, Clone, Copy)]
struct ScopeLayer;

impl<S> Layer<S> for ScopeLayer {
    type Service = Scope<S>;
    fn layer(&self, inner: S) -> Scope<S> {
        Scope { inner }
    }
}

#[derive(Debug, Clone)]
struct Scope<S> {
    inner: S,
}

impl<S: Service<Request>> Service<Request> for Scope<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<String, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        CURRENT.scope(id, self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn app() -> impl Service<Request, Response = Response, Error = Infallible> {
        let routes = Router::new()
            .route(
                "/items/{id}",
                get(|| async { current().unwrap_or_default() }),
            )
            .route(
                "/boom",
                get(|| async {
                    panic!("a handler bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .layer(crate::http_metrics::HttpMetricsLayer);
        layer(routes)
    }

    async fn call(path: &str, id: Option<&str>) -> (u16, Option<String>, String) {
        let mut request = Request::builder().uri(path);
        if let Some(id) = id {
            request = request.header(HEADER, id);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let echoed = response
            .headers()
            .get(HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, echoed, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_id_is_given_back_and_readable_by_the_handler() {
        let (status, echoed, body) = call("/items/7", Some("req-123")).await;
        assert_eq!(
            (status, echoed.as_deref(), body.as_str()),
            (200, Some("req-123"), "req-123")
        );
        let (_, generated, body) = call("/items/7", None).await;
        let generated = generated.expect("an id is made when none is sent");
        assert_eq!(body, generated);
    }

    #[tokio::test]
    async fn a_panic_is_the_500_envelope_with_the_id() {
        let (status, echoed, body) = call("/boom", Some("req-boom")).await;
        assert_eq!(status, 500);
        assert_eq!(echoed.as_deref(), Some("req-boom"));
        assert!(
            body.contains("INTERNAL_ERROR") && body.contains("\"success\":false"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn routes_are_still_labelled_by_their_pattern() {
        call("/items/42", None).await;
        let metrics = crate::metrics::render();
        assert!(
            metrics
                .contains(r#"http_requests_total{method="GET",route="/items/{id}",status="200"}"#),
            "{metrics}"
        );
    }
}
