//! Request metrics for every router: `http_requests_total{route,method,status}` and
//! `http_request_duration_seconds{route,method}`, labelled by the route's template (never
//! the raw path, so short codes do not explode label cardinality).
//!
//! A tower layer with its own future rather than `axum::middleware::from_fn`: that one
//! boxes each request's future and clones the service it wraps, on every route, per request
//! (`bench/profile.sh`). Add it with `Router::layer`, which puts it around every route (the
//! template is known only once routed) and the fallback (`unmatched`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use prometheus::{
    register_histogram_vec, register_int_counter_vec, Histogram, HistogramVec, IntCounter,
    IntCounterVec,
};
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
            record(
                route,
                this.method,
                response.status(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(outcome)
    }
}

/// The metric handles of one (route, method, status): resolving them through the vectors'
/// labels hashes the label texts and takes a lock, twice a request (`bench/profile.sh`).
struct Handles {
    route: Box<str>,
    method: Method,
    status: StatusCode,
    latency: Histogram,
    requests: IntCounter,
}

/// Enough for every route's usual answers; past it, the vectors are asked directly.
const HANDLES_PER_THREAD: usize = 64;

thread_local! {
    /// Per worker thread: no lock, and a short list (routes × methods × statuses seen).
    static HANDLES: RefCell<Vec<Handles>> = const { RefCell::new(Vec::new()) };
}

fn record(route: &str, method: &Method, status: StatusCode, elapsed: std::time::Duration) {
    let seconds = elapsed.as_secs_f64();
    HANDLES.with_borrow_mut(|handles| {
        let found = handles
            .iter()
            .position(|h| h.status == status && h.method == method && &*h.route == route);
        let index = match found {
            Some(index) => index,
            None if handles.len() < HANDLES_PER_THREAD => {
                handles.push(Handles {
                    route: route.into(),
                    method: method.clone(),
                    status,
                    latency: HTTP_LATENCY.with_label_values(&[route, method.as_str()]),
                    requests: HTTP_REQUESTS.with_label_values(&[
                        route,
                        method.as_str(),
                        status.as_str(),
                    ]),
                });
                handles.len() - 1
            }
            None => {
                HTTP_LATENCY
                    .with_label_values(&[route, method.as_str()])
                    .observe(seconds);
                HTTP_REQUESTS
                    .with_label_values(&[route, method.as_str(), status.as_str()])
                    .inc();
                return;
            }
        };
        handles[index].latency.observe(seconds);
        handles[index].requests.inc();
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn requests(route: &str, method: &str, status: &str) -> u64 {
        HTTP_REQUESTS
            .with_label_values(&[route, method, status])
            .get()
    }

    fn timed(route: &str, method: &str) -> u64 {
        HTTP_LATENCY
            .with_label_values(&[route, method])
            .get_sample_count()
    }

    #[tokio::test]
    async fn counts_and_times_each_answer_by_route_template_method_and_status() {
        let app = Router::new()
            .route("/metrics-test/{id}", get(|| async { "ok" }))
            .layer(HttpMetricsLayer);
        for path in [
            "/metrics-test/a",
            "/metrics-test/b",
            "/metrics-test/a",
            "/nowhere",
        ] {
            let request = Request::builder().uri(path).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let request = Request::post("/metrics-test/a")
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();

        assert_eq!(requests("/metrics-test/{id}", "GET", "200"), 3);
        assert_eq!(timed("/metrics-test/{id}", "GET"), 3);
        assert_eq!(requests("/metrics-test/{id}", "POST", "405"), 1);
        assert_eq!(timed("/metrics-test/{id}", "POST"), 1);
    }

    #[test]
    fn past_the_handles_a_thread_keeps_every_answer_is_still_counted() {
        let routes: Vec<String> = (0..HANDLES_PER_THREAD + 8)
            .map(|n| format!("/overflow-test/{n}"))
            .collect();
        for _ in 0..2 {
            for route in &routes {
                record(
                    route,
                    &Method::GET,
                    StatusCode::OK,
                    Duration::from_millis(1),
                );
            }
        }
        for route in &routes {
            assert_eq!(requests(route, "GET", "200"), 2, "{route}");
            assert_eq!(timed(route, "GET"), 2, "{route}");
        }
    }
}
