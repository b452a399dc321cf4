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

/// One endpoint: its method and its path template (`{shortCode}` and the like are path
/// parameters, as the OpenAPI document writes them). Each [`Caller`] method calls one.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
}

/// Every endpoint a [`Caller`] method calls.
pub const ENDPOINTS: &[Endpoint] = &[
    SEND_EVENT,
    SEND_EVENTS,
    CAPTURE_EVENT,
    REPORT_OPEN,
    CREATE_LINK,
    LIST_LINKS,
    CREATE_LINKS,
    UPDATE_LINK,
    DELETE_LINK,
    LINK_METADATA,
    ATTRIBUTE,
    MATCH_TYPES,
    ANALYTICS,
    ANALYTICS_TOTALS,
    ANALYTICS_TIMESERIES,
    ANALYTICS_FUNNEL,
    ANALYTICS_TOP_LINKS,
    CREATE_WEBHOOK,
    WEBHOOKS,
    DELETE_WEBHOOK,
    WEBHOOK_DELIVERIES,
    SET_APPS,
    DOMAINS,
    ADD_DOMAIN,
    REMOVE_DOMAIN,
    VERIFY_DOMAIN,
    CREATE_SIGN_IN_LINK,
    CREATE_ACCOUNT,
];

const SEND_EVENT: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/events",
};
const SEND_EVENTS: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/events/batch",
};
const CAPTURE_EVENT: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/capture-event",
};
const REPORT_OPEN: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/opens",
};
const CREATE_LINK: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/referral-links",
};
const LIST_LINKS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/referral-links",
};
const CREATE_LINKS: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/referral-links/bulk",
};
const UPDATE_LINK: Endpoint = Endpoint {
    method: "PATCH",
    path: "/api/v1/referral-links/{shortCode}",
};
const DELETE_LINK: Endpoint = Endpoint {
    method: "DELETE",
    path: "/api/v1/referral-links/{shortCode}",
};
const LINK_METADATA: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/referral-links/metadata",
};
const ATTRIBUTE: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/attributions",
};
const MATCH_TYPES: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/attributions/match-types",
};
const ANALYTICS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/analytics",
};
const ANALYTICS_TOTALS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/analytics/totals",
};
const ANALYTICS_TIMESERIES: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/analytics/timeseries",
};
const ANALYTICS_FUNNEL: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/analytics/funnel",
};
const ANALYTICS_TOP_LINKS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/analytics/top-links",
};
const CREATE_WEBHOOK: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/webhooks",
};
const WEBHOOKS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/webhooks",
};
const DELETE_WEBHOOK: Endpoint = Endpoint {
    method: "DELETE",
    path: "/api/v1/webhooks/{id}",
};
const WEBHOOK_DELIVERIES: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/webhooks/{id}/deliveries",
};
const SET_APPS: Endpoint = Endpoint {
    method: "PUT",
    path: "/api/v1/apps",
};
const DOMAINS: Endpoint = Endpoint {
    method: "GET",
    path: "/api/v1/domains",
};
const ADD_DOMAIN: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/domains",
};
const REMOVE_DOMAIN: Endpoint = Endpoint {
    method: "DELETE",
    path: "/api/v1/domains/{domain}",
};
const VERIFY_DOMAIN: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/domains/{domain}/verify",
};
const CREATE_SIGN_IN_LINK: Endpoint = Endpoint {
    method: "POST",
    path: "/api/v1/dashboard/sign-in-links",
};
const CREATE_ACCOUNT: Endpoint = Endpoint {
    method: "POST",
    path: "/admin/v1/accounts",
};

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
        answer(request).await
    }

    /// `endpoint`, its path parameter filled with `parameter` (when it has one), with
    /// `query` and `body`.
    async fn at(
        &self,
        endpoint: Endpoint,
        parameter: Option<&str>,
        query: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let path = match parameter {
            Some(value) => fill(endpoint.path, value),
            None => endpoint.path.to_owned(),
        };
        let method = Method::from_bytes(endpoint.method.as_bytes()).expect("an HTTP method");
        self.call(method, &with_query(&path, query), body).await
    }

    /// `POST /api/v1/events` (ingest).
    pub async fn send_event(&self, body: Value) -> (u16, Value) {
        self.at(SEND_EVENT, None, "", Some(body)).await
    }

    /// `POST /api/v1/events/batch` (ingest).
    pub async fn send_events(&self, body: Value) -> (u16, Value) {
        self.at(SEND_EVENTS, None, "", Some(body)).await
    }

    /// `POST /api/v1/capture-event` (ingest).
    pub async fn capture_event(&self, body: Value) -> (u16, Value) {
        self.at(CAPTURE_EVENT, None, "", Some(body)).await
    }

    /// `POST /api/v1/opens` (api).
    pub async fn report_open(&self, body: Value) -> (u16, Value) {
        self.at(REPORT_OPEN, None, "", Some(body)).await
    }

    /// `POST /api/v1/referral-links` (api).
    pub async fn create_link(&self, body: Value) -> (u16, Value) {
        self.at(CREATE_LINK, None, "", Some(body)).await
    }

    /// `POST /api/v1/referral-links/bulk` (api).
    pub async fn create_links(&self, body: Value) -> (u16, Value) {
        self.at(CREATE_LINKS, None, "", Some(body)).await
    }

    /// `GET /api/v1/referral-links?{query}` (api).
    pub async fn list_links(&self, query: &str) -> (u16, Value) {
        self.at(LIST_LINKS, None, query, None).await
    }

    /// `PATCH /api/v1/referral-links/{code}` (api).
    pub async fn update_link(&self, code: &str, body: Value) -> (u16, Value) {
        self.at(UPDATE_LINK, Some(code), "", Some(body)).await
    }

    /// `DELETE /api/v1/referral-links/{code}` (api).
    pub async fn delete_link(&self, code: &str) -> (u16, Value) {
        self.at(DELETE_LINK, Some(code), "", None).await
    }

    /// `GET /api/v1/referral-links/metadata?shortCode={code}` (api).
    pub async fn link_metadata(&self, code: &str) -> (u16, Value) {
        self.at(LINK_METADATA, None, &format!("shortCode={code}"), None)
            .await
    }

    /// `POST /api/v1/attributions` (api).
    pub async fn attribute(&self, body: Value) -> (u16, Value) {
        self.at(ATTRIBUTE, None, "", Some(body)).await
    }

    /// `GET /api/v1/attributions/match-types?{query}` (api).
    pub async fn match_types(&self, query: &str) -> (u16, Value) {
        self.at(MATCH_TYPES, None, query, None).await
    }

    /// `GET /api/v1/analytics?{query}` (api).
    pub async fn analytics(&self, query: &str) -> (u16, Value) {
        self.at(ANALYTICS, None, query, None).await
    }

    /// `GET /api/v1/analytics/totals?{query}` (api).
    pub async fn analytics_totals(&self, query: &str) -> (u16, Value) {
        self.at(ANALYTICS_TOTALS, None, query, None).await
    }

    /// `GET /api/v1/analytics/timeseries?{query}` (api).
    pub async fn analytics_timeseries(&self, query: &str) -> (u16, Value) {
        self.at(ANALYTICS_TIMESERIES, None, query, None).await
    }

    /// `GET /api/v1/analytics/funnel?{query}` (api).
    pub async fn analytics_funnel(&self, query: &str) -> (u16, Value) {
        self.at(ANALYTICS_FUNNEL, None, query, None).await
    }

    /// `GET /api/v1/analytics/top-links?{query}` (api).
    pub async fn analytics_top_links(&self, query: &str) -> (u16, Value) {
        self.at(ANALYTICS_TOP_LINKS, None, query, None).await
    }

    /// `POST /api/v1/webhooks` (api).
    pub async fn create_webhook(&self, body: Value) -> (u16, Value) {
        self.at(CREATE_WEBHOOK, None, "", Some(body)).await
    }

    /// `GET /api/v1/webhooks` (api).
    pub async fn webhooks(&self) -> (u16, Value) {
        self.at(WEBHOOKS, None, "", None).await
    }

    /// `DELETE /api/v1/webhooks/{id}` (api).
    pub async fn delete_webhook(&self, id: &str) -> (u16, Value) {
        self.at(DELETE_WEBHOOK, Some(id), "", None).await
    }

    /// `GET /api/v1/webhooks/{id}/deliveries?{query}` (api).
    pub async fn webhook_deliveries(&self, id: &str, query: &str) -> (u16, Value) {
        self.at(WEBHOOK_DELIVERIES, Some(id), query, None).await
    }

    /// `PUT /api/v1/apps` (api).
    pub async fn set_apps(&self, body: Value) -> (u16, Value) {
        self.at(SET_APPS, None, "", Some(body)).await
    }

    /// `POST /api/v1/domains` (api).
    pub async fn add_domain(&self, body: Value) -> (u16, Value) {
        self.at(ADD_DOMAIN, None, "", Some(body)).await
    }

    /// `GET /api/v1/domains` (api).
    pub async fn domains(&self) -> (u16, Value) {
        self.at(DOMAINS, None, "", None).await
    }

    /// `DELETE /api/v1/domains/{domain}` (api).
    pub async fn remove_domain(&self, domain: &str) -> (u16, Value) {
        self.at(REMOVE_DOMAIN, Some(domain), "", None).await
    }

    /// `POST /api/v1/domains/{domain}/verify` (api).
    pub async fn verify_domain(&self, domain: &str) -> (u16, Value) {
        self.at(VERIFY_DOMAIN, Some(domain), "", None).await
    }

    /// `POST /api/v1/dashboard/sign-in-links` (api).
    pub async fn create_sign_in_link(&self, body: Value) -> (u16, Value) {
        self.at(CREATE_SIGN_IN_LINK, None, "", Some(body)).await
    }

    /// `POST /admin/v1/accounts` (api, admin token).
    pub async fn create_account(&self, body: Value) -> (u16, Value) {
        self.at(CREATE_ACCOUNT, None, "", Some(body)).await
    }
}

/// Sends `request`: the status and the body as JSON (`Null` when it is not JSON).
pub(crate) async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
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
