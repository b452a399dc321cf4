//! A request id that follows a request: taken from `X-Request-Id` (the gateway sets one) or
//! generated, returned on the answer, recorded on the request's span (so every log line
//! of the request carries it), and written into every event the request produces
//! (`EventRecord::request_id`, read here with [`current`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// [`HEADER`] as a header name, made once (`from_static` checks its text every call).
const HEADER_NAME: HeaderName = HeaderName::from_static(HEADER);

/// The longest id taken from a caller; a longer (or non-printable) one is replaced by a
/// generated id rather than written into every event the request produces.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    // The id is visible ASCII (`id_of` keeps no other), so UTF-8's check is enough: cheaper
    // than `HeaderValue::to_str`'s byte by byte one.
    CURRENT
        .try_with(|id| std::str::from_utf8(id.as_bytes()).ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// The caller's id if it is a usable one, else a new UUID.
fn id_of(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(HEADER_NAME)
        .filter(|given| {
            !given.is_empty()
                && given.len() <= MAX_LEN
                && given.as_bytes().iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let made = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(made).expect("a UUID is a valid header value")
        })
}

/// The request id, given or made, its span, the id on the answer and readable by
/// [`current`]: one step around the whole router (`crate::http::app`). One step for all of
/// it: tower-http's three layers for it (set, trace, propagate) plus a task-local scope cost
/// half again as many instructions and an extension map per request (`bench/profile.sh`).
#[derive(Debug, Clone, Copy)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> RequestIdService<S> {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request> for RequestIdService<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
{
    type Response = axum::http::Response<B>;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = id_of(&request);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = id.to_str().unwrap_or_default(),
        );
        Answer {
            inner: CURRENT.scope(id, self.inner.call(request)).instrument(span),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner answer, inside the request's span and id scope, given the id back (the
    /// scope's own, taken from it once the answer is made: no copy of the id to keep).
    pub struct Answer<F: Future> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<HeaderValue, F>>,
    }
}

impl<F, B> Future for Answer<F>
where
    F: Future<Output = Result<axum::http::Response<B>, Infallible>>,
{
    type Output = Result<axum::http::Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.as_mut().poll(cx));
        if response.status().is_server_error() {
            let _inside = this.inner.span().enter();
            tracing::error!(status = response.status().as_u16(), "request failed");
        }
        if let Some(id) = this.inner.inner_pin_mut().take_value() {
            response.headers_mut().insert(HEADER_NAME, id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn app() -> impl Service<Request, Response = axum::response::Response, Error = Infallible> {
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
            );
        let templates = crate::http_metrics::RouteTemplates::new(["/items/{id}", "/boom"]);
        crate::http::app(routes, templates, crate::http::NO_BODIES)
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
    async fn an_unusable_id_is_replaced_by_a_made_one() {
        let too_long = "a".repeat(MAX_LEN + 1);
        for given in [too_long.as_str(), "has space", ""] {
            let (status, echoed, body) = call("/items/7", Some(given)).await;
            let echoed = echoed.expect("an id is always given back");
            assert_eq!(status, 200);
            assert_ne!(echoed, given);
            assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
            assert_eq!(body, echoed, "the handler sees the id it is given back");
        }
        let longest = "b".repeat(MAX_LEN);
        let (_, echoed, _) = call("/items/7", Some(&longest)).await;
        assert_eq!(echoed.as_deref(), Some(longest.as_str()));
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
