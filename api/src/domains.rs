//! Link domains (spec, "Attribution to the app"): an account serves its links on domains of
//! its own. A domain is held by one account at a time and serves once verified, by a DNS
//! TXT record `_linktrace.<domain>` holding `linktrace-verify=<token>` or by the operator. On
//! a verified domain the link routes serve that account's links only, and the well-known
//! files list that account's apps only. The routes are in `routes/domains.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use linktrace_domain::DomainName;
use linktrace_platform::cache::TwoSpeedCache;
use linktrace_platform::invalidation::{Change, Invalidate};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

/// One account's domain, as Postgres keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkDomain {
    pub domain: String,
    pub account_id: Uuid,
    pub verification_token: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl LinkDomain {
    /// The TXT record's value that proves the domain is the account's.
    pub fn verification_value(&self) -> String {
        format!("linktrace-verify={}", self.verification_token)
    }
}

/// How a domain was verified.
#[derive(Debug, Clone, Copy)]
pub enum VerifiedBy {
    Dns,
    Operator,
}

impl VerifiedBy {
    fn as_str(self) -> &'static str {
        match self {
            VerifiedBy::Dns => "dns",
            VerifiedBy::Operator => "operator",
        }
    }
}

/// The statements on Postgres's `link_domains`.
pub mod sql {
    const COLUMNS: &str =
        "domain, account_id, verification_token, verified_at, verified_by, created_at";
    pub fn add() -> String {
        format!(
            "INSERT INTO link_domains (domain, account_id, verification_token) VALUES ($1, $2, $3) \
             ON CONFLICT (domain) DO NOTHING RETURNING {COLUMNS}"
        )
    }
    pub fn find() -> String {
        format!("SELECT {COLUMNS} FROM link_domains WHERE domain = $1")
    }
    pub fn list() -> String {
        format!(
            "SELECT {COLUMNS} FROM link_domains WHERE account_id = $1 ORDER BY created_at, domain"
        )
    }
    /// Marks $1 verified by $2; `$3` (when not null) must be its account.
    pub fn verify() -> String {
        format!(
            "UPDATE link_domains SET verified_at = COALESCE(verified_at, now()), \
                    verified_by = COALESCE(verified_by, $2) \
             WHERE domain = $1 AND ($3::uuid IS NULL OR account_id = $3) RETURNING {COLUMNS}"
        )
    }
    pub const REMOVE: &str = "DELETE FROM link_domains WHERE domain = $1 AND account_id = $2";
    pub const VERIFIED_OWNER: &str =
        "SELECT account_id FROM link_domains WHERE domain = $1 AND verified_at IS NOT NULL";
}

/// Adds `domain` to the account: the new row and `true`, or the account's existing row and
/// `false`; `DomainTaken` when another account holds it.
pub async fn add(
    pool: &PgPool,
    account_id: Uuid,
    domain: &DomainName,
) -> Result<(LinkDomain, bool), ApiError> {
    let token = Uuid::new_v4().simple().to_string();
    let added: Option<LinkDomain> = sqlx::query_as(&sql::add())
        .bind(domain.as_str())
        .bind(account_id)
        .bind(&token)
        .fetch_optional(pool)
        .await?;
    if let Some(added) = added {
        return Ok((added, true));
    }
    match find(pool, domain).await? {
        Some(existing) if existing.account_id == account_id => Ok((existing, false)),
        Some(_) => Err(ApiError::DomainTaken),
        // Removed between the two statements: try once more.
        None => Box::pin(add(pool, account_id, domain)).await,
    }
}

pub async fn find(pool: &PgPool, domain: &DomainName) -> Result<Option<LinkDomain>, ApiError> {
    Ok(sqlx::query_as(&sql::find())
        .bind(domain.as_str())
        .fetch_optional(pool)
        .await?)
}

/// The account's domain, else `NotFound` (also for another account's).
pub async fn find_owned(
    pool: &PgPool,
    account_id: Uuid,
    domain: &DomainName,
) -> Result<LinkDomain, ApiError> {
    find(pool, domain)
        .await?
        .filter(|d| d.account_id == account_id)
        .ok_or(ApiError::NotFound("domain"))
}

pub async fn list(pool: &PgPool, account_id: Uuid) -> Result<Vec<LinkDomain>, ApiError> {
    Ok(sqlx::query_as(&sql::list())
        .bind(account_id)
        .fetch_all(pool)
        .await?)
}

pub async fn remove(pool: &PgPool, account_id: Uuid, domain: &DomainName) -> Result<(), ApiError> {
    let removed = sqlx::query(sql::REMOVE)
        .bind(domain.as_str())
        .bind(account_id)
        .execute(pool)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(ApiError::NotFound("domain"));
    }
    Ok(())
}

/// Marks the domain verified (the first verification's time and way stay); `account` limits
/// it to that account's domain. `NotFound` when there is no such domain.
pub async fn mark_verified(
    pool: &PgPool,
    domain: &DomainName,
    by: VerifiedBy,
    account: Option<Uuid>,
) -> Result<LinkDomain, ApiError> {
    sqlx::query_as(&sql::verify())
        .bind(domain.as_str())
        .bind(by.as_str())
        .bind(account)
        .fetch_optional(pool)
        .await?
        .ok_or(ApiError::NotFound("domain"))
}

/// Which account a request's host belongs to: the owner of the verified domain it names.
/// Cached per host; every api instance forgets a host the moment a change to its domain
/// commits (`domains:<domain>` notifications, Postgres migration 0016), so a domain that
/// is removed or moves to another account stops serving the old owner's links at once.
/// The TTLs are a safety net only.
pub struct DomainOwners {
    pool: PgPool,
    owners: TwoSpeedCache<String, Uuid>,
}

/// How long a host's owner is trusted without a change notification.
pub const OWNER_TTL: Duration = Duration::from_secs(30);
/// How long a host that is no verified domain is remembered as such.
pub const NOT_A_DOMAIN_TTL: Duration = Duration::from_secs(5);

impl DomainOwners {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            owners: TwoSpeedCache::new("domain_owners", 100_000, OWNER_TTL, NOT_A_DOMAIN_TTL),
        }
    }

    /// The account whose verified domain `host` (a `Host` header) is, if any.
    pub async fn owner_of(&self, host: Option<&str>) -> Result<Option<Uuid>, ApiError> {
        let Some(domain) = host.and_then(DomainName::from_host) else {
            return Ok(None);
        };
        self.owners
            .get_or_load(domain.as_str(), || async {
                sqlx::query_scalar::<_, Uuid>(sql::VERIFIED_OWNER)
                    .bind(domain.as_str())
                    .fetch_optional(&self.pool)
                    .await
            })
            .await
            .map_err(ApiError::from)
    }

    /// Forgets what this instance remembers of `domain`, at once (after a change made
    /// here; the change's notification does the same on every instance).
    pub fn forget(&self, domain: &DomainName) {
        self.owners.invalidate(domain.as_str());
    }
}

impl Invalidate for DomainOwners {
    fn invalidate(&self, change: &Change) {
        match change {
            Change::Domain(domain) => self.owners.invalidate(domain.as_str()),
            Change::Everything => self.owners.clear(),
            Change::Link(_) | Change::Keys => {}
        }
    }
}

/// Looks up a domain's verification TXT record.
pub struct DnsVerifier {
    resolver: TokioResolver,
}

impl DnsVerifier {
    /// `resolver`: `ip:port` of the DNS server to ask (`DNS_RESOLVER`); empty: the system's
    /// (`/etc/resolv.conf`).
    pub fn new(resolver: &str) -> anyhow::Result<Self> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        // A record just added must be seen: no answers kept between checks.
        options.cache_size = 0;
        let builder = if resolver.trim().is_empty() {
            // A machine without a readable resolv.conf still starts; its checks then fail
            // with a reason (`detail`) rather than the service not starting.
            TokioResolver::builder_tokio().unwrap_or_else(|error| {
                tracing::warn!(%error, "no system DNS configuration; set DNS_RESOLVER");
                TokioResolver::builder_with_config(
                    ResolverConfig::default(),
                    TokioConnectionProvider::default(),
                )
            })
        } else {
            let address: SocketAddr = resolver
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("DNS_RESOLVER must be ip:port, got {resolver:?}"))?;
            let mut config = ResolverConfig::new();
            config.add_name_server(NameServerConfig::new(address, Protocol::Udp));
            config.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        Ok(Self {
            resolver: builder.with_options(options).build(),
        })
    }

    /// Whether `_linktrace.<domain>` has a TXT record whose text is `expected`; `Err` says
    /// why the answer is unknown (the DNS server did not answer).
    pub async fn has_record(&self, domain: &DomainName, expected: &str) -> Result<bool, String> {
        let name = format!("{}.", domain.verification_name());
        match self.resolver.txt_lookup(name).await {
            Ok(lookup) => Ok(lookup.iter().any(|txt| {
                let text: Vec<u8> = txt
                    .txt_data()
                    .iter()
                    .flat_map(|part| part.iter().copied())
                    .collect();
                String::from_utf8_lossy(&text).trim() == expected
            })),
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => Ok(false),
            Err(error) => Err(error.to_string()),
        }
    }
}
