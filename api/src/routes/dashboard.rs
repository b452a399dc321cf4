//! `GET /dashboard`: a small page where an account owner pastes a key and sees links, the
//! funnel and a time series. Plain HTML and JS over the public API; no build step.

use axum::response::Html;

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../static/dashboard.html"))
}
