//! One attempt: POST the stored body, signed, to the webhook's URL, and say how it went.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envconfig::Envconfig;
use linktrace_domain::AddressPolicy;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};

use crate::outbox::Claimed;
use crate::resolver::PolicyResolver;
use crate::signature;

#[derive(Envconfig, Clone, Copy, Debug)]
pub struct DeliveryConfig {
    /// An attempt that has no answer after this long has failed (and is retried).
    #[envconfig(from = "WEBHOOK_TIMEOUT_MS", default = "10000")]
    pub timeout_ms: u64,
    /// Attempts in flight per webhook at most: a slow endpoint holds only its own slots.
    #[envconfig(from = "WEBHOOK_CONCURRENCY_PER_ENDPOINT", default = "16")]
    pub concurrency_per_endpoint: u16,
    /// Attempts in flight in this worker at most, all endpoints together: a few tenants'
    /// endpoints cannot take every connection, task and buffer the worker has.
    #[envconfig(from = "WEBHOOK_MAX_IN_FLIGHT", default = "256")]
    pub max_in_flight: u32,
}

/// How much of an endpoint's answer is read: its status is what counts, the rest is read
/// only so far (a receiver answering 150 MB must not cost the worker 150 MB).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

impl DeliveryConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How long a claimed delivery is leased: its attempt's deadline and a margin to
    /// record the outcome. A worker killed mid-attempt leaves it due again after this.
    pub fn lease(&self) -> Duration {
        self.timeout() + Duration::from_secs(5)
    }
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The endpoint answered 2xx.
    pub delivered: bool,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub took: Duration,
}

pub struct Deliverer {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl Deliverer {
    pub fn new(config: &DeliveryConfig, policy: AddressPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(5)))
            // A redirect is an answer (not 2xx, so retried), never followed: it could lead
            // anywhere, the policy's addresses included.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            // A proxy from the environment (HTTP(S)_PROXY) would resolve names itself and
            // reach addresses the policy refuses: never used.
            .no_proxy()
            .pool_max_idle_per_host(usize::from(config.concurrency_per_endpoint))
            .build()?;
        Ok(Self { client, policy })
    }

    #[tracing::instrument(name = "deliver", skip_all, fields(webhook = %claimed.webhook_id, event = %claimed.event_id, attempt = claimed.attempts))]
    pub async fn attempt(&self, claimed: &Claimed) -> AttemptResult {
        let started = Instant::now();
        let failed = |error: String| AttemptResult {
            delivered: false,
            response_code: None,
            error: Some(error),
            took: started.elapsed(),
        };
        // Names are judged by the resolver; addresses written in the URL here.
        if !self.policy.permits_url_host(&claimed.url) {
            return failed(
                "the URL's address is not allowed (loopback, private or reserved)".into(),
            );
        }
        let signed = signature::sign(
            &claimed.secret,
            chrono::Utc::now().timestamp(),
            claimed.body.as_bytes(),
        );
        let sent = self
            .client
            .post(&claimed.url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("LinkTrace-Webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header("linktrace-event-id", claimed.event_id.to_string())
            .header("linktrace-attempt", claimed.attempts.to_string())
            .header(signature::HEADER, signed)
            .body(claimed.body.clone())
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = response.status();
                // Read a small answer whole, so the connection can be reused; a larger one
                // only up to the bound, then the connection is dropped with it.
                let mut read = 0;
                while read <= MAX_ANSWER_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                AttemptResult {
                    delivered: status.is_success(),
                    response_code: Some(status.as_u16()),
                    error: (!status.is_success()).then(|| format!("answered {status}")),
                    took: started.elapsed(),
                }
            }
            Err(error) => failed(describe(&error)),
        }
    }
}

/// reqwest's own message is generic ("error sending request"); the cause is below it.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}
