//! Change notifications from Postgres (`migrations/postgres/0007_change_notifications.sql`):
//! every process that caches links or keys listens on `linktrace_changes` and forgets what
//! changed the moment the change commits, on every instance. Cache TTLs stay, as a safety
//! net only.
//!
//! Notifications sent while the listening connection is down are lost, so after every
//! (re)connection everything is forgotten once: nothing changed meanwhile stays cached.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

pub const CHANNEL: &str = "linktrace_changes";

/// One change, as announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The link with this short code was created, changed or deleted.
    Link(String),
    /// The link domain with this name was added, verified, moved or removed.
    Domain(String),
    /// Something that decides what an API key stands for (a key, an account, a plan).
    Keys,
    /// Changes may have been missed (the listener reconnected): forget everything.
    Everything,
}

impl Change {
    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("links", code)) => Some(Change::Link(code.to_owned())),
            Some(("domains", domain)) => Some(Change::Domain(domain.to_owned())),
            None if payload == "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

/// What forgets its copies when told of a change.
pub trait Invalidate: Send + Sync + 'static {
    fn invalidate(&self, change: &Change);
}

/// The running listener; it stops when this is dropped (with the service that holds it).
pub struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens until the returned guard is dropped, telling `caches` of every change. Returns
/// once the first connection listens (changes committed after that are never missed).
pub async fn spawn_listener(
    pool: &PgPool,
    caches: Vec<Arc<dyn Invalidate>>,
) -> Result<Listening, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(Listening(tokio::spawn(async move {
        let tell = |change: &Change| {
            for cache in &caches {
                cache.invalidate(change);
            }
        };
        loop {
            // `try_recv` answers `None` when the connection was lost; the next call
            // reconnects and listens again.
            match listener.try_recv().await {
                Ok(Some(notification)) => match Change::parse(notification.payload()) {
                    Some(change) => tell(&change),
                    None => tracing::warn!(payload = notification.payload(), "unknown change"),
                },
                Ok(None) => {
                    tracing::warn!("change listener reconnecting; forgetting every cached answer");
                    tell(&Change::Everything);
                }
                Err(error) => {
                    tracing::warn!(%error, "change listener failed; retrying");
                    tell(&Change::Everything);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })))
}

impl Invalidate for crate::keys::KeyDirectory {
    fn invalidate(&self, change: &Change) {
        if matches!(change, Change::Keys | Change::Everything) {
            self.forget_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            Change::parse("links:abcd1234"),
            Some(Change::Link("abcd1234".into()))
        );
        assert_eq!(Change::parse("keys"), Some(Change::Keys));
        assert_eq!(
            Change::parse("domains:go.acme.test"),
            Some(Change::Domain("go.acme.test".into()))
        );
        assert_eq!(Change::parse("other"), None);
    }
}
