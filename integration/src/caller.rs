//! Typed callers of the public and admin APIs: one method per endpoint, so that a scenario
//! reads as the calls it makes (`live.send_event(..)`) rather than as URLs and headers.
//!
//! Every method answers `(status, body)`, the body parsed as JSON (`Null` when it is not),
//! because the tests' subject is often the bad request: bodies stay `serde_json::Value`.
//! Each path is one of [`ENDPOINTS`], which `openapi::every_caller_endpoint_is_documented`
//! holds to the OpenAPI document.

use reqwest::Method;
use serde_json::Value;

use crate::{Running, TestEnv};

/// How a caller authenticates.
#[derive(Debug, Clone)]
enum Credential {
    None,
    ApiKey(String),
    AdminToken(String),
}

/// One client of one running service, with one credential.
#[derive(Debug, Clone)]
pub struct Caller {
    http: reqwest::Client,
    base: String,
    credential: Credential,
}

/// The method and path template of every endpoint a [`Caller`] method calls (`{code}` and
/// the like are path parameters, as the OpenAPI document writes them).
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", EVENTS),
    ("POST", EVENTS_BATCH),
    ("POST", CAPTURE_EVENT),
    ("POST", OPENS),
    ("POST", LINKS),
    ("GET", LINKS),
    ("POST", LINKS_BULK),
    ("PATCH", LINK),
    ("DELETE", LINK),
    ("GET", LINK_METADATA),
    ("POST", ATTRIBUTIONS),
    ("GET", MATCH_TYPES),
    ("GET", ANALYTICS),
    ("GET", ANALYTICS_TOTALS),
    ("GET", ANALYTICS_TIMESERIES),
    ("GET", ANALYTICS_FUNNEL),
    ("GET", ANALYTICS_TOP_LINKS),
    ("POST", WEBHOOKS),
    ("GET", WEBHOOKS),
    ("DELETE", WEBHOOK),
    ("GET", WEBHOOK_DELIVERIES),
    ("PUT", APPS),
    ("GET", DOMAINS),
    ("POST", DOMAINS),
    ("DELETE", DOMAIN),
    ("POST", DOMAIN_VERIFY),
    ("POST", SIGN_IN_LINKS),
    ("POST", ADMIN_ACCOUNTS),
];

const EVENTS: &str = "/api/v1/events";
const EVENTS_BATCH: &str = "/api/v1/events/batch";
const CAPTURE_EVENT: &str = "/api/v1/capture-event";
const OPENS: &str = "/api/v1/opens";
const LINKS: &str = "/api/v1/referral-links";
const LINKS_BULK: &str = "/api/v1/referral-links/bulk";
const LINK: &str = "/api/v1/referral-links/{shortCode}";
const LINK_METADATA: &str = "/api/v1/referral-links/metadata";
const ATTRIBUTIONS: &str = "/api/v1/attributions";
const MATCH_TYPES: &str = "/api/v1/attributions/match-types";
const ANALYTICS: &str = "/api/v1/analytics";
const ANALYTICS_TOTALS: &str = "/api/v1/analytics/totals";
const ANALYTICS_TIMESERIES: &str = "/api/v1/analytics/timeseries";
const ANALYTICS_FUNNEL: &str = "/api/v1/analytics/funnel";
const ANALYTICS_TOP_LINKS: &str = "/api/v1/analytics/top-links";
const WEBHOOKS: &str = "/api/v1/webhooks";
const WEBHOOK: &str = "/api/v1/webhooks/{id}";
const WEBHOOK_DELIVERIES: &str = "/api/v1/webhooks/{id}/deliveries";
const APPS: &str = "/api/v1/apps";
const DOMAINS: &str = "/api/v1/domains";
const DOMAIN: &str = "/api/v1/domains/{domain}";
const DOMAIN_VERIFY: &str = "/api/v1/domains/{domain}/verify";
const SIGN_IN_LINKS: &str = "/api/v1/dashboard/sign-in-links";
const ADMIN_ACCOUNTS: &str = "/admin/v1/accounts";

/// `template` with its one `{…}` parameter replaced by `value`.
fn fill(template: &str, value: &str) -> String {
    let start = template.find('{').expect("a path parameter");
    let end = template.find('}').expect("a path parameter");
    format!("{}{value}{}", &template[..start], &template[end + 1..])
}

/// `path` followed by `?query`, or `path` alone when `query` is empty.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.trim_start_matches('?'))
    }
}

impl TestEnv {
    /// Calls `service` with `key` as its `x-api-key`.
    pub fn caller(&self, service: &Running, key: &str) -> Caller {
        self.caller_with(service, Credential::ApiKey(key.to_owned()))
    }

    /// Calls `service` with no credential at all.
    pub fn anonymous(&self, service: &Running) -> Caller {
        self.caller_with(service, Credential::None)
    }

    /// Calls `service`'s admin endpoints with `token` as its bearer token.
    pub fn admin(&self, service: &Running, token: &str) -> Caller {
        self.caller_with(service, Credential::AdminToken(token.to_owned()))
    }

    fn caller_with(&self, service: &Running, credential: Credential) -> Caller {
        Caller {
            http: self.http.clone(),
            base: service.url(""),
            credential,
        }
    }
}

impl Caller {
    /// The same service and client with another API key.
    pub fn with_key(&self, key: &str) -> Caller {
        Caller {
            credential: Credential::ApiKey(key.to_owned()),
            ..self.clone()
        }
    }

    /// A request to `path` (with its query), authenticated; for the odd call no method names,
    /// such as a path with bytes the typed methods never build.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.credential {
            Credential::None => request,
            Credential::ApiKey(key) => request.header("x-api-key", key),
            Credential::AdminToken(token) => request.bearer_auth(token),
        }
    }

    /// `method path` with `body` as JSON (when given): the status and the JSON answer.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `POST /api/v1/events` (ingest).
    pub async fn send_event(&self, body: Value) -> (u16, Value) {
        self.post(EVENTS, body).await
    }

    /// `POST /api/v1/events/batch` (ingest).
    pub async fn send_events(&self, body: Value) -> (u16, Value) {
        self.post(EVENTS_BATCH, body).await
    }

    /// `POST /api/v1/capture-event` (ingest).
    pub async fn capture_event(&self, body: Value) -> (u16, Value) {
        self.post(CAPTURE_EVENT, body).await
    }

    /// `POST /api/v1/opens` (api).
    pub async fn report_open(&self, body: Value) -> (u16, Value) {
        self.post(OPENS, body).await
    }

    /// `POST /api/v1/referral-links` (api).
    pub async fn create_link(&self, body: Value) -> (u16, Value) {
        self.post(LINKS, body).await
    }

    /// `POST /api/v1/referral-links/bulk` (api).
    pub async fn create_links(&self, body: Value) -> (u16, Value) {
        self.post(LINKS_BULK, body).await
    }

    /// `GET /api/v1/referral-links?{query}` (api).
    pub async fn list_links(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(LINKS, query)).await
    }

    /// `PATCH /api/v1/referral-links/{code}` (api).
    pub async fn update_link(&self, code: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, &fill(LINK, code), Some(body))
            .await
    }

    /// `DELETE /api/v1/referral-links/{code}` (api).
    pub async fn delete_link(&self, code: &str) -> (u16, Value) {
        self.call(Method::DELETE, &fill(LINK, code), None).await
    }

    /// `GET /api/v1/referral-links/metadata?shortCode={code}` (api).
    pub async fn link_metadata(&self, code: &str) -> (u16, Value) {
        self.get(&with_query(LINK_METADATA, &format!("shortCode={code}")))
            .await
    }

    /// `POST /api/v1/attributions` (api).
    pub async fn attribute(&self, body: Value) -> (u16, Value) {
        self.post(ATTRIBUTIONS, body).await
    }

    /// `GET /api/v1/attributions/match-types?{query}` (api).
    pub async fn match_types(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(MATCH_TYPES, query)).await
    }

    /// `GET /api/v1/analytics?{query}` (api).
    pub async fn analytics(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(ANALYTICS, query)).await
    }

    /// `GET /api/v1/analytics/totals?{query}` (api).
    pub async fn analytics_totals(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(ANALYTICS_TOTALS, query)).await
    }

    /// `GET /api/v1/analytics/timeseries?{query}` (api).
    pub async fn analytics_timeseries(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(ANALYTICS_TIMESERIES, query)).await
    }

    /// `GET /api/v1/analytics/funnel?{query}` (api).
    pub async fn analytics_funnel(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(ANALYTICS_FUNNEL, query)).await
    }

    /// `GET /api/v1/analytics/top-links?{query}` (api).
    pub async fn analytics_top_links(&self, query: &str) -> (u16, Value) {
        self.get(&with_query(ANALYTICS_TOP_LINKS, query)).await
    }

    /// `POST /api/v1/webhooks` (api).
    pub async fn create_webhook(&self, body: Value) -> (u16, Value) {
        self.post(WEBHOOKS, body).await
    }

    /// `GET /api/v1/webhooks` (api).
    pub async fn webhooks(&self) -> (u16, Value) {
        self.get(WEBHOOKS).await
    }

    /// `DELETE /api/v1/webhooks/{id}` (api).
    pub async fn delete_webhook(&self, id: &str) -> (u16, Value) {
        self.call(Method::DELETE, &fill(WEBHOOK, id), None).await
    }

    /// `GET /api/v1/webhooks/{id}/deliveries?{query}` (api).
    pub async fn webhook_deliveries(&self, id: &str, query: &str) -> (u16, Value) {
        self.get(&with_query(&fill(WEBHOOK_DELIVERIES, id), query))
            .await
    }

    /// `PUT /api/v1/apps` (api).
    pub async fn set_apps(&self, body: Value) -> (u16, Value) {
        self.call(Method::PUT, APPS, Some(body)).await
    }

    /// `POST /api/v1/domains` (api).
    pub async fn add_domain(&self, body: Value) -> (u16, Value) {
        self.post(DOMAINS, body).await
    }

    /// `GET /api/v1/domains` (api).
    pub async fn domains(&self) -> (u16, Value) {
        self.get(DOMAINS).await
    }

    /// `DELETE /api/v1/domains/{domain}` (api).
    pub async fn remove_domain(&self, domain: &str) -> (u16, Value) {
        self.call(Method::DELETE, &fill(DOMAIN, domain), None).await
    }

    /// `POST /api/v1/domains/{domain}/verify` (api).
    pub async fn verify_domain(&self, domain: &str) -> (u16, Value) {
        self.call(Method::POST, &fill(DOMAIN_VERIFY, domain), None)
            .await
    }

    /// `POST /api/v1/dashboard/sign-in-links` (api).
    pub async fn create_sign_in_link(&self, body: Value) -> (u16, Value) {
        self.post(SIGN_IN_LINKS, body).await
    }

    /// `POST /admin/v1/accounts` (api, admin token).
    pub async fn create_account(&self, body: Value) -> (u16, Value) {
        self.post(ADMIN_ACCOUNTS, body).await
    }
}

/// Asserts that an answer is the documented error envelope with `expected` status and
/// `code`: `success: false`, a message a person can read, and `resetsOn` only on a quota
/// refusal.
#[track_caller]
pub fn assert_envelope(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if code != "QUOTA_EXCEEDED" {
        assert!(body.get("resetsOn").is_none(), "{body}");
    }
}
