//! `GET /dashboard`: a small page where an account owner pastes a key and sees clicks over a
//! chosen range with their breakdowns (countries, devices, OS, browsers, referrers, UTM),
//! the funnel, a time series and the links. Plain HTML and JS over the public API; no build step.

use axum::response::Html;

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../static/dashboard.html"))
}
