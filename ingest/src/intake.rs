//! The path every event takes once its request is parsed: link ownership, dedup claim,
//! quota, produce, and the bookkeeping that keeps "accepted" and "stored" in step.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use linktrace_domain::{
    Endpoint, EntityId, Environment, EventName, EventRecord, EventSource, Revenue, ShortCode,
};
use linktrace_platform::clock::Clock;
use linktrace_platform::error::CommonError;
use linktrace_platform::kafka::{EventSink, SinkError};
use linktrace_platform::keys::{KeyDirectory, KeyOwner};
use uuid::Uuid;

use crate::claims::{ClaimKey, ClaimOutcome, EntityClaims};
use crate::directory::Directory;
use crate::error::IngestError;
use crate::idempotency::{IdempotencyStore, IdempotentRequest};
use crate::in_flight::InFlight;
use crate::metrics::{EVENTS_ACCEPTED, EVENTS_DEDUPLICATED, EVENTS_REJECTED};
use crate::quota::{QuotaDecision, QuotaLimiter};
use linktrace_platform::rate_limit::KeyRateLimiter;

/// How far back and ahead an event's own `timestamp` may be (spec, "Links at scale").
const BACKFILL_PAST: chrono::TimeDelta = chrono::TimeDelta::days(30);
const BACKFILL_FUTURE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// An event as parsed from a request, before it is stamped and produced.
#[derive(Debug)]
pub struct EventDraft {
    pub link: Option<ShortCode>,
    pub event_name: EventName,
    pub entity: Option<EntityId>,
    pub user_id: Option<String>,
    pub properties: Option<serde_json::Value>,
    pub revenue: Option<Revenue>,
    /// When the event happened, if the request said (a backfill); else when it is received.
    pub happened_at: Option<DateTime<Utc>>,
    /// The request's `Idempotency-Key` (its nonce) and this event's place in the request.
    pub idempotent: Option<(IdempotentRequest, usize)>,
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
    /// Events per second per key; test keys have a bucket of their own (`test_rate_limiter`),
    /// their only bound since the quota counts live events only.
    pub rate_limiter: Arc<KeyRateLimiter>,
    pub test_rate_limiter: Arc<KeyRateLimiter>,
    pub idempotency: Arc<IdempotencyStore>,
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
        self.take_rate(&resolved, 1)?;
        resolved.require(endpoint)?;
        Ok(resolved)
    }

    /// Takes `events` units of the key's rate (a request is one; a batch then takes one per
    /// further event it carries).
    pub fn take_rate(&self, key: &KeyOwner, events: u32) -> Result<(), IngestError> {
        let limiter = match key.environment {
            Environment::Live => &self.rate_limiter,
            Environment::Test => &self.test_rate_limiter,
        };
        limiter
            .check_n(key.account_id, key.environment, events)
            .map_err(|wait| IngestError::RateLimited {
                retry_after_secs: KeyRateLimiter::retry_after_secs(wait),
            })
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
                        if let Err(error) = claims.mark_queued(entity_key).await {
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
        let happened_at = match draft.happened_at {
            Some(at) => {
                let at = at.trunc_subsecs(6);
                if at < now - BACKFILL_PAST || at > now + BACKFILL_FUTURE {
                    return Err(IngestError::validation(
                        "timestamp must be at most 30 days in the past and 5 minutes in the future",
                    ));
                }
                at
            }
            None => now,
        };
        // Which dedup claim the event takes, if any: its entity tuple, or (an event of an
        // idempotent request without an entity id) a tuple of the request's nonce, so a
        // retry of a failed attempt stores it once.
        let claim = match (&draft.link, &draft.entity, &draft.idempotent) {
            (Some(link), Some(entity), _) => Some((
                ClaimKey {
                    event_id: EventRecord::entity_event_id(
                        key.account_id,
                        key.environment,
                        link,
                        &draft.event_name,
                        entity,
                    ),
                    account_id: key.account_id,
                },
                // A tuple recorded before is "deduplicated".
                Accepted::Deduplicated,
            )),
            (_, None, Some((request, index))) => Some((
                ClaimKey {
                    event_id: request.event_id(*index),
                    account_id: key.account_id,
                },
                // The failed attempt did put it on the stream: its answer is "queued".
                Accepted::Queued,
            )),
            _ => None,
        };
        let mut event_time = happened_at;
        let (event_id, claimed) = match claim {
            Some((claim_key, when_recorded)) => {
                // Boxed: the plain path's future need not carry room for a claim's.
                match Box::pin(self.claims.claim(claim_key, happened_at)).await? {
                    ClaimOutcome::Duplicate => return Ok(when_recorded),
                    ClaimOutcome::StillInFlight => {
                        return Err(IngestError::Unavailable(anyhow::anyhow!(
                            "another request for this event is still being produced"
                        )))
                    }
                    ClaimOutcome::Claimed {
                        event_id,
                        event_time: claimed_time,
                    } => {
                        event_time = claimed_time;
                        in_flight.hold_claim(claim_key);
                        // An entity event is checked by the consumer as such; another
                        // claimed event says so on the record.
                        (event_id, draft.entity.is_none())
                    }
                }
            }
            None => (Uuid::new_v4(), false),
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
            claimed,
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
