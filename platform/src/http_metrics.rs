//! Request metrics for every service: `http_requests_total{route,method,status}` and
//! `http_request_duration_seconds{route,method}`, labelled by the route's template (never
//! the raw path, so short codes do not explode label cardinality).
//!
//! One layer around the whole router, the template found by matching the path against the
//! service's [`RouteTemplates`] (the matcher axum routes with): as `Router::layer` it wrapped
//! every route, and axum then boxed and cloned that route's service and future on every
//! request, about 1,600 instructions of ingest's ~78k (`bench/profile.sh`). A method is a label
//! only if it is a standard one (any other is `OTHER`), so neither paths nor methods a
//! caller makes up can grow the series.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use prometheus::{
    register_histogram_vec, register_int_counter_vec, Histogram, HistogramVec, IntCounter,
    IntCounterVec,
};
use tower::{Layer, Service};

use crate::metrics::LATENCY_BUCKETS;

/// The label of a request whose path is no route's.
const UNMATCHED: &str = "unmatched";

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

/// The route templates of a service (`/api/v1/links/{id}`), matched the way axum matches
/// them: a request is labelled by the template its path matches, else `unmatched`.
#[derive(Clone)]
pub struct RouteTemplates {
    matcher: Arc<matchit::Router<Arc<str>>>,
}

impl RouteTemplates {
    pub fn new<I, T>(templates: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut matcher = matchit::Router::<Arc<str>>::new();
        for template in templates {
            let template = template.as_ref();
            // The same template twice (two methods) is one route; a conflict is a bug.
            if matcher.at(template).map(|m| &**m.value) != Ok(template) {
                matcher
                    .insert(template, Arc::from(template))
                    .unwrap_or_else(|error| panic!("route template {template}: {error}"));
            }
        }
        Self {
            matcher: Arc::new(matcher),
        }
    }

    /// Every path an OpenAPI description documents, and `more`.
    pub fn documented<T: AsRef<str>>(
        api: &utoipa::openapi::OpenApi,
        more: impl IntoIterator<Item = T>,
    ) -> Self {
        let documented = api.paths.paths.keys().map(String::as_str);
        let more: Vec<T> = more.into_iter().collect();
        Self::new(documented.chain(more.iter().map(AsRef::as_ref)))
    }

    /// The template `path` matches.
    fn template(&self, path: &str) -> Option<Arc<str>> {
        self.matcher.at(path).ok().map(|m| Arc::clone(m.value))
    }
}

/// Counts and times every request of the service it wraps (a whole router).
#[derive(Clone)]
pub struct HttpMetricsLayer {
    routes: RouteTemplates,
}

impl HttpMetricsLayer {
    pub fn new(routes: RouteTemplates) -> Self {
        Self { routes }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;
    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics {
            inner,
            routes: self.routes.clone(),
        }
    }
}

#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    routes: RouteTemplates,
}

impl<S, B> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = self.routes.template(request.uri().path());
        let method = label_of(request.method());
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
        route: Option<Arc<str>>,
        method: Method,
        started: Instant,
    }
}

impl<F, B, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &outcome {
            let route = this.route.as_deref().unwrap_or(UNMATCHED);
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

/// `method`, if it is one of HTTP's own, else `OTHER`.
fn label_of(method: &Method) -> Method {
    match *method {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::HEAD
        | Method::OPTIONS
        | Method::TRACE
        | Method::CONNECT => method.clone(),
        _ => Method::from_bytes(b"OTHER").expect("a valid method"),
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
        let router = Router::new()
            .route("/metrics-test/{id}", get(|| async { "ok" }))
            .route("/metrics-test/static", get(|| async { "ok" }))
            .fallback(crate::http::not_found);
        let templates = RouteTemplates::new(["/metrics-test/{id}", "/metrics-test/static"]);
        let app = crate::http::app(router, templates, crate::http::NO_BODIES);
        let unmatched_before = requests(UNMATCHED, "GET", "404");
        for path in [
            "/metrics-test/a",
            "/metrics-test/b",
            "/metrics-test/a",
            "/metrics-test/static",
            "/metrics-test/a/b",
        ] {
            let request = Request::builder().uri(path).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let request = Request::post("/metrics-test/a")
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();
        for made_up in ["BREW", "PROPFIND-9"] {
            let request = Request::builder()
                .method(made_up)
                .uri("/metrics-test/a")
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }

        assert_eq!(requests("/metrics-test/{id}", "GET", "200"), 3);
        assert_eq!(timed("/metrics-test/{id}", "GET"), 3);
        assert_eq!(requests("/metrics-test/static", "GET", "200"), 1);
        assert_eq!(requests("/metrics-test/{id}", "POST", "405"), 1);
        assert_eq!(timed("/metrics-test/{id}", "POST"), 1);
        assert_eq!(requests("/metrics-test/{id}", "OTHER", "405"), 2);
        assert_eq!(requests("/metrics-test/{id}", "BREW", "405"), 0);
        assert!(requests(UNMATCHED, "GET", "404") > unmatched_before);
    }

    #[test]
    fn templates_match_as_axum_routes_and_take_a_documented_api() {
        let templates = RouteTemplates::new([
            "/{short_code}",
            "/dashboard",
            "/api/v1/links/{id}",
            "/api/v1/links/{id}",
        ]);
        let template = |path: &str| templates.template(path).map(|t| t.to_string());
        assert_eq!(template("/dashboard").as_deref(), Some("/dashboard"));
        assert_eq!(template("/abc123").as_deref(), Some("/{short_code}"));
        assert_eq!(
            template("/api/v1/links/7").as_deref(),
            Some("/api/v1/links/{id}")
        );
        assert_eq!(template("/api/v1/links"), None);
        assert_eq!(template("/abc123/more"), None);

        let mut api = utoipa::openapi::OpenApi::default();
        api.paths.paths.insert(
            "/api/v1/events".to_owned(),
            utoipa::openapi::PathItem::default(),
        );
        let documented = RouteTemplates::documented(&api, crate::http::OPERATIONAL_PATHS);
        for path in ["/api/v1/events", "/healthz", "/metrics"] {
            assert_eq!(documented.template(path).as_deref(), Some(path));
        }
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
