//! Compensation in one place: what an event holds while it is on its way to the broker —
//! its entity claim and its quota permit — is given back unless the event was accepted.
//! Every error path hands the guard to [`InFlight::undo`], which completes before the
//! answer goes out (so a retry finds the tuple free at once); a request dropped midway
//! (the client went away) undoes it on drop, in the background.

use std::sync::Arc;

use crate::claims::{ClaimKey, EntityClaims};
use crate::quota::{QuotaLimiter, QuotaPermit};

/// Borrows the services it gives back to (no reference counts touched per event); only a
/// drop midway, which gives back in the background, takes its own references.
pub struct InFlight<'a> {
    claims: &'a Arc<EntityClaims>,
    quota: &'a Arc<QuotaLimiter>,
    claim: Option<ClaimKey>,
    permit: Option<QuotaPermit>,
}

impl<'a> InFlight<'a> {
    pub fn new(claims: &'a Arc<EntityClaims>, quota: &'a Arc<QuotaLimiter>) -> Self {
        Self {
            claims,
            quota,
            claim: None,
            permit: None,
        }
    }

    pub fn hold_claim(&mut self, claim: ClaimKey) {
        self.claim = Some(claim);
    }

    pub fn hold_permit(&mut self, permit: QuotaPermit) {
        self.permit = Some(permit);
    }

    /// The broker has the event: the permit is spent, and the claim (if any) is handed
    /// back to be marked queued.
    pub fn accept(mut self) -> Option<ClaimKey> {
        self.permit = None;
        self.claim.take()
    }

    /// The event was not accepted: refund the permit and free the tuple for a retry.
    pub async fn undo(mut self) {
        give_back(
            self.claims,
            self.quota,
            self.claim.take(),
            self.permit.take(),
        )
        .await;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let (claim, permit) = (self.claim.take(), self.permit.take());
        if claim.is_none() && permit.is_none() {
            return;
        }
        let (claims, quota) = (self.claims.clone(), self.quota.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { give_back(&claims, &quota, claim, permit).await });
        }
    }
}

async fn give_back(
    claims: &EntityClaims,
    quota: &QuotaLimiter,
    claim: Option<ClaimKey>,
    permit: Option<QuotaPermit>,
) {
    if let Some(permit) = permit {
        quota.refund(permit).await;
    }
    if let Some(key) = claim {
        if let Err(error) = claims.release(key).await {
            // The claim stays pending and is taken over once stale.
            tracing::warn!(%error, "could not release entity claim");
        }
    }
}
