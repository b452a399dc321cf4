//! Request metrics for every router: `http_requests_total{route,method,status}` and
//! `http_request_duration_seconds{route,method}`, labelled by the route's template (never
//! the raw path, so short codes do not explode label cardinality).
//!
//! A tower layer with its own future rather than `axum::middleware::from_fn`: that one
//! boxes each request's future and clones the service it wraps, on every route, per request
//! (`bench/profile.sh`). Add it with `Router::layer`, which puts it around every route (the
//! template is known only once routed) and the fallback (`unmatched`).

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use prometheus::{register_histogram_vec, register_int_counter_vec, HistogramVec, IntCounterVec};
use tower::{Layer, Service};

use crate::metrics::LATENCY_BUCKETS;

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "http_requests_total",
        "HTTP requests answered, by route, method and status",
        &["route", "method", "status"]
    )
    .expect("metric registers once")
});

static HTTP_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "http_request_duration_seconds",
        "HTTP request latency, by route and method",
        &["route", "method"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

/// Counts and times every request of the routes it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpMetricsLayer;

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;
    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
}

impl<S> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Both are cheap clones (an `Arc<str>`, a standard method), not allocations.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        Tracked {
            inner: self.inner.call(request),
            route,
            method,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer on its way, recorded once it is there.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        method: Method,
        started: Instant,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &outcome {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let method = this.method.as_str();
            HTTP_LATENCY
                .with_label_values(&[route, method])
                .observe(this.started.elapsed().as_secs_f64());
            HTTP_REQUESTS
                .with_label_values(&[route, method, response.status().as_str()])
                .inc();
        }
        Poll::Ready(outcome)
    }
}
