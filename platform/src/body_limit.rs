//! A service's request body limit (axum's `DefaultBodyLimit`), given only to the requests
//! whose body could exceed it: those that do not declare their length, that declare a
//! chunked one, or that declare more than the limit.
//!
//! A body whose `Content-Length` is declared (and not chunked) cannot be longer: hyper reads
//! exactly that many bytes, and HTTP/2 refuses a stream that sends more than it declared.
//! Such a body within the limit therefore needs no limit of its own, and is spared the
//! request's extension map, which the limit would be the first to allocate (and which a
//! fourth entry, after axum's three, makes grow: ~560 instructions of a plain event's,
//! `bench/profile.sh`). What a request is answered is the same either way: a body over the
//! limit still reaches the handler's extractor as too large (so a handler that checks the
//! caller's key first still answers 401 before 413), and a route with its own
//! `DefaultBodyLimit` still has it.

use std::task::{Context, Poll};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use tower::{Layer, Service};

#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    max_bytes: usize,
}

impl BodyLimitLayer {
    pub fn max(max_bytes: usize) -> Self {
        Self { max_bytes }
    }
}

impl<S: Clone> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            limited: DefaultBodyLimit::max(self.max_bytes).layer(inner.clone()),
            declared_within: inner,
            max_bytes: self.max_bytes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    /// The inner service behind axum's limit: for bodies that could exceed it.
    limited: <DefaultBodyLimit as Layer<S>>::Service,
    /// The inner service itself: for bodies declared within the limit.
    declared_within: S,
    max_bytes: usize,
}

impl<S> BodyLimit<S> {
    fn declared_within_limit(&self, request: &Request) -> bool {
        let headers = request.headers();
        !headers.contains_key(TRANSFER_ENCODING)
            && headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|declared| declared <= self.max_bytes as u64)
    }
}

impl<S> Service<Request> for BodyLimit<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        std::task::ready!(self.limited.poll_ready(cx))?;
        self.declared_within.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> S::Future {
        if self.declared_within_limit(&request) {
            self.declared_within.call(request)
        } else {
            self.limited.call(request)
        }
    }
}

/// The most of a refused request's body that is read before answering (the gateway's own
/// limit, `client_max_body_size 2m`).
pub const DISCARDED_AT_MOST: usize = 2 * 1024 * 1024;

/// Reads and drops what is left of a request's body before an answer that does not need it
/// (a refusal). A connection closed while a proxy is still sending the body fails at the
/// proxy ("broken pipe"), whose caller then gets a 503 instead of the refusal.
pub async fn discard(body: axum::body::Body) {
    let _ = axum::body::to_bytes(body, DISCARDED_AT_MOST).await;
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    const LIMIT: usize = 16;

    /// Answers how many extensions the request carried and how many body bytes it read.
    async fn read(request: Request) -> (StatusCode, String) {
        let extensions = request.extensions().len();
        match axum::body::to_bytes(request.into_body(), usize::MAX).await {
            Ok(bytes) => (StatusCode::OK, format!("{extensions} {}", bytes.len())),
            Err(_) => (StatusCode::BAD_REQUEST, String::new()),
        }
    }

    fn app() -> BodyLimit<Router> {
        let router = Router::new()
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route("/extensions", post(read))
            .route(
                "/big",
                post(|body: Bytes| async move { body.len().to_string() })
                    .layer(DefaultBodyLimit::max(4 * LIMIT)),
            );
        BodyLimitLayer::max(LIMIT).layer(router)
    }

    async fn call(path: &str, body: Body, length: Option<usize>, chunked: bool) -> (u16, String) {
        let mut request = Request::post(path);
        if let Some(length) = length {
            request = request.header(CONTENT_LENGTH, length);
        }
        if chunked {
            request = request.header(TRANSFER_ENCODING, "chunked");
        }
        let response = app().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A body with no declared length (a stream), as a chunked request's is.
    fn streamed(len: usize) -> Body {
        let chunks = vec![Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; len]))];
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_body_that_could_exceed_the_limit_is_held_to_it() {
        let over = LIMIT + 1;
        // No length declared, chunked, or more declared than the limit: 413 past it.
        assert_eq!(call("/read", streamed(over), None, false).await.0, 413);
        assert_eq!(call("/read", streamed(over), Some(4), true).await.0, 413);
        let declared_over = Body::from(vec![b'x'; over]);
        assert_eq!(call("/read", declared_over, Some(over), false).await.0, 413);
        // Within it, each is read.
        assert_eq!(
            call("/read", streamed(LIMIT), None, false).await,
            (200, LIMIT.to_string())
        );
    }

    #[tokio::test]
    async fn a_route_with_its_own_limit_keeps_it() {
        let big = 3 * LIMIT;
        let declared = Body::from(vec![b'x'; big]);
        assert_eq!(
            call("/big", declared, Some(big), false).await,
            (200, big.to_string())
        );
        assert_eq!(
            call("/big", streamed(big), None, false).await,
            (200, big.to_string())
        );
        assert_eq!(call("/big", streamed(5 * LIMIT), None, false).await.0, 413);
    }

    #[tokio::test]
    async fn a_body_declared_within_the_limit_is_given_no_limit_extension() {
        let declared = Body::from(vec![b'x'; LIMIT]);
        let (status, within) = call("/extensions", declared, Some(LIMIT), false).await;
        let (_, streamed) = call("/extensions", streamed(LIMIT), None, false).await;
        let count = |answer: &str| -> usize { answer.split(' ').next().unwrap().parse().unwrap() };
        assert_eq!(status, 200);
        assert_eq!(
            count(&streamed),
            count(&within) + 1,
            "within: {within}, streamed: {streamed}"
        );
    }
}
