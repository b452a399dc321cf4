//! `/healthz` (the process is up) and `/readyz` (its real dependencies answer).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

/// One dependency a service needs in order to take traffic.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

/// The set of checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Runs every check (each bounded to two seconds) and reports each one.
    pub async fn report(&self) -> (bool, Value) {
        let results = futures::future::join_all(self.checks.iter().map(|c| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), c.check())
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            (c.name(), outcome)
        }))
        .await;
        let mut ready = true;
        let mut details = Map::new();
        for (name, outcome) in results {
            let value = match outcome {
                Ok(()) => json!("ok"),
                Err(error) => {
                    ready = false;
                    json!(error)
                }
            };
            details.insert(name.to_owned(), value);
        }
        (
            ready,
            json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": details }),
        )
    }
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, Json<Value>) {
    let (ready, body) = readiness.report().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
