//! The path every event takes once its request is parsed: link ownership, dedup claim,
//! quota, produce, and the bookkeeping that keeps "accepted" and "stored" in step.

use std::sync::Arc;

use chrono::SubsecRound;
use linktrace_domain::{
    Endpoint, EntityId, Environment, EventName, EventRecord, EventSource, Revenue, ShortCode,
};
use linktrace_platform::clock::Clock;
use linktrace_platform::error::CommonError;
use linktrace_platform::kafka::{EventSink, SinkError};
use linktrace_platform::keys::{KeyDirectory, KeyOwner};
use uuid::Uuid;

use crate::claims::{ClaimOutcome, EntityClaims, EntityKey};
use crate::directory::Directory;
use crate::error::IngestError;
use crate::in_flight::InFlight;
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
    pub revenue: Option<Revenue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    Deduplicated,
}

pub struct Intake {
    pub keys: Arc<KeyDirectory>,
    pub directory: Arc<Directory>,
    pub quota: Arc<QuotaLimiter>,
    pub claims: Arc<EntityClaims>,
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub rate_limiter: Arc<KeyRateLimiter>,
}

impl Intake {
    /// Resolves the API key in `secret` and checks that its plan allows `endpoint`.
    #[tracing::instrument(name = "auth", skip_all, fields(endpoint = endpoint.as_str()))]
    pub async fn authenticate(
        &self,
        secret: Option<&str>,
        endpoint: Endpoint,
    ) -> Result<KeyOwner, IngestError> {
        let resolved = self
            .keys
            .resolve(secret)
            .await?
            .ok_or(IngestError::Common(CommonError::Unauthorized))?;
        if let Err(wait) = self
            .rate_limiter
            .check(resolved.account_id, resolved.environment)
        {
            return Err(IngestError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        resolved.require(endpoint)?;
        Ok(resolved)
    }

    /// Checks that `link` exists and belongs to the caller's account.
    pub async fn check_link(&self, key: &KeyOwner, link: &ShortCode) -> Result<(), IngestError> {
        match self.directory.link_owner(link.as_str()).await? {
            Some(owner) if owner == key.account_id => Ok(()),
            _ => Err(IngestError::Common(CommonError::LinkNotFound)),
        }
    }

    pub async fn ingest(
        &self,
        key: &KeyOwner,
        source: EventSource,
        draft: EventDraft,
    ) -> Result<Accepted, IngestError> {
        let outcome = self.ingest_inner(key, source, draft).await;
        match &outcome {
            Ok(Accepted::Queued) => EVENTS_ACCEPTED.inc(source),
            Ok(Accepted::Deduplicated) => EVENTS_DEDUPLICATED.inc(source),
            Err(error) => EVENTS_REJECTED.with_label_values(&[error.reason()]).inc(),
        }
        outcome
    }

    async fn ingest_inner(
        &self,
        key: &KeyOwner,
        source: EventSource,
        draft: EventDraft,
    ) -> Result<Accepted, IngestError> {
        let mut in_flight = InFlight::new(&self.claims, &self.quota);
        match self
            .claim_and_produce(key, source, draft, &mut in_flight)
            .await
        {
            Ok(Accepted::Queued) => {
                if let Some(entity_key) = in_flight.accept() {
                    // The event is in the stream: the answer need not wait for this
                    // bookkeeping (group-committed with other requests' marks). Until it
                    // lands, an identical call finds the claim pending and waits for it; if
                    // it fails, the consumer still marks the tuple stored once it is
                    // written, and a crash before it leaves a claim that is taken over
                    // once stale and produced again under the same event id (stored once).
                    let claims = Arc::clone(&self.claims);
                    tokio::spawn(async move {
                        if let Err(error) = claims.mark_queued(&entity_key).await {
                            tracing::warn!(%error, "could not mark entity event queued");
                        }
                    });
                }
                Ok(Accepted::Queued)
            }
            Ok(Accepted::Deduplicated) => Ok(Accepted::Deduplicated),
            Err(error) => {
                // Boxed, like the claim: the accepted path's future carries neither.
                Box::pin(in_flight.undo()).await;
                Err(error)
            }
        }
    }

    /// Claims the entity tuple and a unit of quota (both held by `in_flight`), then
    /// produces. Any error leaves the undoing to the caller's guard.
    async fn claim_and_produce(
        &self,
        key: &KeyOwner,
        source: EventSource,
        draft: EventDraft,
        in_flight: &mut InFlight<'_>,
    ) -> Result<Accepted, IngestError> {
        // Microseconds, what the record and Postgres keep: an event without a time of its own
        // then has no `eventTime` on the wire (it happened when it was received).
        let now = self.clock.now().trunc_subsecs(6);
        let mut event_time = now;
        let event_id = match (&draft.link, &draft.entity) {
            (Some(link), Some(entity)) => {
                let event_id =
                    EventRecord::entity_event_id(key.account_id, link, &draft.event_name, entity);
                let entity_key = EntityKey {
                    account_id: key.account_id,
                    link_short_code: link.as_str().to_owned(),
                    event_name: draft.event_name.as_str().to_owned(),
                    entity_id: entity.as_str().to_owned(),
                };
                // Boxed: the plain path's future need not carry room for a claim's.
                match Box::pin(self.claims.claim(&entity_key, event_id, now)).await? {
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
                in_flight.hold_claim(entity_key);
                event_id
            }
            _ => Uuid::new_v4(),
        };

        if key.environment == Environment::Live {
            match self
                .quota
                .acquire(key.account_id, key.monthly_event_quota, now)
                .await?
            {
                QuotaDecision::Granted(permit) => in_flight.hold_permit(permit),
                QuotaDecision::Exhausted { resets_on } => {
                    return Err(IngestError::QuotaExceeded { resets_on })
                }
            }
        }

        let record = EventRecord {
            link_short_code: draft.link.map(ShortCode::into_string),
            entity_id: draft.entity.map(EntityId::into_string),
            user_id: draft.user_id,
            properties: draft.properties,
            revenue: draft.revenue,
            request_id: linktrace_platform::request_id::current(),
            ..EventRecord::new(
                event_id,
                key.account_id,
                key.environment,
                draft.event_name.into_string(),
                source,
                now,
            )
        }
        .happened_at(event_time);
        self.sink.send(&record).await.map_err(|error| match error {
            SinkError::TooLarge => IngestError::validation("event is too large"),
            SinkError::Unavailable(_) => IngestError::Unavailable(error.into()),
        })?;
        Ok(Accepted::Queued)
    }
}
