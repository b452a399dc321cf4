//! The visitor key (unique clicks without raw IPs) and what is kept of a click's IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A daily visitor key: `sha256(salt of the day, ip, user agent, UTC day)`, 128 bits in hex.
/// The same device clicking twice in a day is one visitor (every api instance uses the
/// day's one salt, kept in Postgres), so unique visitors within a day are exact; keys do
/// not link a device across days. Each day's salt is random and is destroyed once its day
/// is over (Plausible's design): a stored key can then never be recomputed from an IP, not
/// even by us, so a truncated IP exported beside it gives nothing back.
#[derive(Default)]
pub struct VisitorKeys {
    salts: RwLock<HashMap<NaiveDate, [u8; 32]>>,
}

impl VisitorKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn key(&self, ip: IpAddr, user_agent: &str, at: DateTime<Utc>) -> String {
        let day = at.date_naive();
        let salt = self.salt(day);
        let mut hash = Sha256::new();
        hash.update(salt);
        hash.update([0x1f]);
        match ip {
            IpAddr::V4(v4) => hash.update(v4.octets()),
            IpAddr::V6(v6) => hash.update(v6.octets()),
        }
        hash.update([0x1f]);
        hash.update(user_agent.as_bytes());
        hash.update([0x1f]);
        hash.update(day.to_string().as_bytes());
        hex::encode(&hash.finalize()[..16])
    }

    /// The day's salt; one of this process's own when the shared one is not known yet (the
    /// redirect never waits: the keeper installs the shared one within a minute, or at
    /// start).
    fn salt(&self, day: NaiveDate) -> [u8; 32] {
        if let Some(salt) = self.salts.read().expect("not poisoned").get(&day) {
            return *salt;
        }
        tracing::warn!(%day, "no shared visitor salt for the day yet; using one of this process");
        *self
            .salts
            .write()
            .expect("not poisoned")
            .entry(day)
            .or_insert_with(random_salt)
    }

    /// Takes the day's shared salt (from [`VisitorSalts`]).
    pub fn install(&self, day: NaiveDate, salt: [u8; 32]) {
        self.salts.write().expect("not poisoned").insert(day, salt);
    }

    /// Forgets the salts of days before `day`.
    pub fn forget_before(&self, day: NaiveDate) {
        self.salts
            .write()
            .expect("not poisoned")
            .retain(|d, _| *d >= day);
    }
}

fn random_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// The days' salts in Postgres (`visitor_salts`), shared by every api instance.
pub struct VisitorSalts {
    pool: PgPool,
}

/// How long after midnight (UTC) the day before's salt is destroyed: clicks stamped just
/// before midnight are keyed by then.
const GRACE: TimeDelta = TimeDelta::minutes(5);

impl VisitorSalts {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The day's salt, made now if no instance has made it yet.
    pub async fn of(&self, day: NaiveDate) -> Result<[u8; 32], sqlx::Error> {
        sqlx::query(
            "INSERT INTO visitor_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
        )
        .bind(day)
        .bind(random_salt().to_vec())
        .execute(&self.pool)
        .await?;
        let salt: Vec<u8> = sqlx::query_scalar("SELECT salt FROM visitor_salts WHERE day = $1")
            .bind(day)
            .fetch_one(&self.pool)
            .await?;
        Ok(salt.try_into().unwrap_or_else(|_| random_salt()))
    }

    /// Destroys the salts no click can need any more: every day before today, once the
    /// grace after midnight has passed. Returns how many went.
    pub async fn destroy_past(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let keep_from = (now - GRACE).date_naive();
        Ok(sqlx::query("DELETE FROM visitor_salts WHERE day < $1")
            .bind(keep_from)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Today's and tomorrow's salts into `keys`, the past ones destroyed here and there.
    pub async fn refresh(&self, keys: &VisitorKeys, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let today = now.date_naive();
        for day in [today, today + TimeDelta::days(1)] {
            keys.install(day, self.of(day).await?);
        }
        self.destroy_past(now).await?;
        keys.forget_before((now - GRACE).date_naive());
        Ok(())
    }

    /// Refreshes once now (so the first click already has the shared salt), then every
    /// minute until the returned task is aborted.
    pub async fn keep(
        self,
        keys: Arc<VisitorKeys>,
    ) -> Result<tokio::task::JoinHandle<()>, sqlx::Error> {
        self.refresh(&keys, Utc::now()).await?;
        Ok(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(error) = self.refresh(&keys, Utc::now()).await {
                    tracing::warn!(%error, "could not refresh the visitor salts");
                }
            }
        }))
    }
}

/// What is stored of a click's IP (`CLICK_IP_ANONYMISATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPolicy {
    Keep,
    /// IPv4 to its /24, IPv6 to its /48: still a fingerprint within a network, no longer
    /// a person's address.
    Truncate,
    /// No IP stored (fingerprint attribution then has nothing to match).
    Drop,
}

impl FromStr for IpPolicy {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "keep" | "" => Ok(IpPolicy::Keep),
            "truncate" => Ok(IpPolicy::Truncate),
            "drop" => Ok(IpPolicy::Drop),
            other => anyhow::bail!(
                "CLICK_IP_ANONYMISATION must be keep, truncate or drop, not {other:?}"
            ),
        }
    }
}

impl IpPolicy {
    pub fn apply(self, ip: IpAddr) -> Option<String> {
        match self {
            IpPolicy::Keep => Some(ip.to_string()),
            IpPolicy::Drop => None,
            IpPolicy::Truncate => Some(match ip {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    std::net::Ipv4Addr::new(a, b, c, 0).to_string()
                }
                IpAddr::V6(v6) => {
                    let mut segments = v6.segments();
                    segments[3..].fill(0);
                    std::net::Ipv6Addr::from(segments).to_string()
                }
            }),
        }
    }

    /// The IP as stored, for a look-up by an IP given in clear (an attribution's).
    pub fn apply_text(self, ip: &str) -> Option<String> {
        match ip.trim().parse::<IpAddr>() {
            Ok(parsed) => self.apply(parsed),
            Err(_) if self == IpPolicy::Keep => Some(ip.to_owned()),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_keys_are_daily_and_salted() {
        let keys = VisitorKeys::new();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let morning: DateTime<Utc> = "2026-11-24T08:00:00Z".parse().unwrap();
        let evening = "2026-11-24T20:00:00Z".parse().unwrap();
        let tomorrow = "2026-11-25T08:00:00Z".parse().unwrap();
        assert_eq!(keys.key(ip, "ua", morning), keys.key(ip, "ua", evening));
        assert_ne!(keys.key(ip, "ua", morning), keys.key(ip, "ua", tomorrow));
        assert_ne!(keys.key(ip, "ua", morning), keys.key(ip, "ub", morning));
        assert_eq!(keys.key(ip, "ua", morning).len(), 32);
        // Two processes with the day's shared salt agree; without it, they do not.
        let (a, b) = (VisitorKeys::new(), VisitorKeys::new());
        assert_ne!(a.key(ip, "ua", morning), b.key(ip, "ua", morning));
        let (c, d) = (VisitorKeys::new(), VisitorKeys::new());
        c.install(morning.date_naive(), [7; 32]);
        d.install(morning.date_naive(), [7; 32]);
        assert_eq!(c.key(ip, "ua", morning), d.key(ip, "ua", morning));
        c.forget_before(morning.date_naive() + TimeDelta::days(1));
        assert_ne!(
            c.key(ip, "ua", morning),
            d.key(ip, "ua", morning),
            "forgotten"
        );
    }

    #[test]
    fn anonymisation() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:1234:5678::1".parse().unwrap();
        assert_eq!(IpPolicy::Keep.apply(v4).unwrap(), "198.51.100.7");
        assert_eq!(IpPolicy::Truncate.apply(v4).unwrap(), "198.51.100.0");
        assert_eq!(IpPolicy::Truncate.apply(v6).unwrap(), "2001:db8:1234::");
        assert_eq!(IpPolicy::Drop.apply(v4), None);
        assert_eq!(
            IpPolicy::Truncate.apply_text(" 198.51.100.99").unwrap(),
            "198.51.100.0"
        );
        assert!("hide".parse::<IpPolicy>().is_err());
    }
}
