//! The path every event takes once its request is parsed: link ownership, dedup claim,
//! quota, produce, and the bookkeeping that keeps "accepted" and "stored" in step.

use std::sync::Arc;

use linktrace_domain::{
    ApiKey, Endpoint, EntityId, Environment, EventName, EventRecord, EventSource, ShortCode,
    SCHEMA_VERSION,
};
use linktrace_platform::clock::Clock;
use linktrace_platform::kafka::{EventSink, SinkError};
use uuid::Uuid;

use crate::claims::{ClaimOutcome, EntityClaims, EntityKey};
use crate::directory::{Directory, ResolvedKey};
use crate::error::IngestError;
use crate::metrics::{EVENTS_ACCEPTED, EVENTS_DEDUPLICATED, EVENTS_REJECTED};
use crate::quota::{QuotaDecision, QuotaLimiter};
use crate::rate_limit::KeyRateLimiter;

/// An event as parsed from a request, before it is stamped and produced.
#[derive(Debug)]
pub struct EventDraft {
    pub link: Option<ShortCode>,
    pub event_name: EventName,
    pub entity: Option<EntityId>,
    pub user_id: Option<String>,
    pub properties: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    Deduplicated,
}

pub struct Intake {
    pub directory: Arc<Directory>,
    pub quota: Arc<QuotaLimiter>,
    pub claims: Arc<EntityClaims>,
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub rate_limiter: Arc<KeyRateLimiter>,
}

impl Intake {
    /// Resolves the API key in `secret` and checks that its plan allows `endpoint`.
    pub async fn authenticate(
        &self,
        secret: Option<&str>,
        endpoint: Endpoint,
    ) -> Result<ResolvedKey, IngestError> {
        let key = secret
            .and_then(|s| ApiKey::parse(s).ok())
            .ok_or(IngestError::Unauthorized)?;
        let resolved = self
            .directory
            .resolve_key(&key.hash())
            .await?
            .ok_or(IngestError::Unauthorized)?;
        if let Err(wait) = self
            .rate_limiter
            .check(resolved.account_id, resolved.environment)
        {
            return Err(IngestError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        if !resolved.allows(endpoint) {
            return Err(IngestError::PlanUpgradeRequired);
        }
        Ok(resolved)
    }

    /// Checks that `link` exists and belongs to the caller's account.
    pub async fn check_link(&self, key: &ResolvedKey, link: &ShortCode) -> Result<(), IngestError> {
        match self.directory.link_owner(link.as_str()).await? {
            Some(owner) if owner == key.account_id => Ok(()),
            _ => Err(IngestError::LinkNotFound),
        }
    }

    pub async fn ingest(
        &self,
        key: &ResolvedKey,
        source: EventSource,
        draft: EventDraft,
    ) -> Result<Accepted, IngestError> {
        let outcome = self.ingest_inner(key, source, draft).await;
        match &outcome {
            Ok(Accepted::Queued) => EVENTS_ACCEPTED.with_label_values(&[source.as_str()]).inc(),
            Ok(Accepted::Deduplicated) => EVENTS_DEDUPLICATED
                .with_label_values(&[source.as_str()])
                .inc(),
            Err(error) => EVENTS_REJECTED.with_label_values(&[error.reason()]).inc(),
        }
        outcome
    }

    async fn ingest_inner(
        &self,
        key: &ResolvedKey,
        source: EventSource,
        draft: EventDraft,
    ) -> Result<Accepted, IngestError> {
        let now = self.clock.now();
        let mut event_time = now;
        let (event_id, claim) = match (&draft.link, &draft.entity) {
            (Some(link), Some(entity)) => {
                let event_id =
                    EventRecord::entity_event_id(key.account_id, link, &draft.event_name, entity);
                let entity_key = EntityKey {
                    account_id: key.account_id,
                    link_short_code: link.as_str().to_owned(),
                    event_name: draft.event_name.as_str().to_owned(),
                    entity_id: entity.as_str().to_owned(),
                };
                match self.claims.claim(&entity_key, event_id, now).await? {
                    ClaimOutcome::Duplicate => return Ok(Accepted::Deduplicated),
                    ClaimOutcome::StillInFlight => {
                        return Err(IngestError::Unavailable(anyhow::anyhow!(
                            "another request for this event is still being produced"
                        )))
                    }
                    ClaimOutcome::Claimed {
                        event_time: claimed_time,
                    } => event_time = claimed_time,
                }
                (event_id, Some(entity_key))
            }
            _ => (Uuid::new_v4(), None),
        };

        let permit = if key.environment == Environment::Live {
            match self
                .quota
                .acquire(key.account_id, key.monthly_event_quota)
                .await
            {
                Ok(QuotaDecision::Granted(permit)) => Some(permit),
                Ok(QuotaDecision::Exhausted { resets_on }) => {
                    self.release(claim.as_ref()).await;
                    return Err(IngestError::QuotaExceeded { resets_on });
                }
                Err(error) => {
                    self.release(claim.as_ref()).await;
                    return Err(error.into());
                }
            }
        } else {
            None
        };

        let record = EventRecord {
            schema_version: SCHEMA_VERSION,
            event_id,
            account_id: key.account_id,
            environment: key.environment,
            link_short_code: draft.link.map(|l| l.as_str().to_owned()),
            event_name: draft.event_name.as_str().to_owned(),
            entity_id: draft.entity.map(|e| e.as_str().to_owned()),
            user_id: draft.user_id,
            properties: draft.properties,
            source,
            client: None,
            event_time,
            received_at: now,
        };
        match self.sink.send(&record).await {
            Ok(()) => {
                if let Some(entity_key) = &claim {
                    // The event is in the stream; if this bookkeeping fails the consumer
                    // still marks the tuple stored once it is written.
                    if let Err(error) = self.claims.mark_queued(entity_key).await {
                        tracing::warn!(%error, "could not mark entity event queued");
                    }
                }
                Ok(Accepted::Queued)
            }
            Err(error) => {
                if let Some(permit) = permit {
                    self.quota.refund(permit).await;
                }
                self.release(claim.as_ref()).await;
                Err(match error {
                    SinkError::TooLarge => IngestError::Validation("event is too large".into()),
                    SinkError::Unavailable(_) => IngestError::Unavailable(error.into()),
                })
            }
        }
    }

    async fn release(&self, claim: Option<&EntityKey>) {
        if let Some(entity_key) = claim {
            if let Err(error) = self.claims.release(entity_key).await {
                // The claim stays pending and is taken over once stale.
                tracing::warn!(%error, "could not release entity claim");
            }
        }
    }
}
