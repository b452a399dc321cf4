//! Postgres: configuration, the pool, migrations and the readiness check.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use envconfig::Envconfig;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::health::ReadinessCheck;
use crate::secret::Secret;

#[derive(Envconfig, Clone, Debug)]
pub struct PostgresConfig {
    /// May hold a password: a [`Secret`].
    #[envconfig(
        from = "DATABASE_URL",
        default = "postgres://postgres@127.0.0.1:5432/linktrace"
    )]
    pub url: Secret,
    #[envconfig(from = "DATABASE_MAX_CONNECTIONS", default = "16")]
    pub max_connections: u32,
}

/// The embedded Postgres migrations (`migrations/postgres`), shared by every service.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Creates the database if it is missing, connects, and applies pending migrations
/// (a no-op when there are none; concurrent callers serialise on sqlx's advisory lock).
pub async fn connect_and_migrate(config: &PostgresConfig) -> anyhow::Result<PgPool> {
    connect_and_migrate_with(config, &[]).await
}

/// [`connect_and_migrate`], every connection starting with the run-time parameters
/// `settings` (`SET name = value` for the session's whole life).
pub async fn connect_and_migrate_with(
    config: &PostgresConfig,
    settings: &[(&str, &str)],
) -> anyhow::Result<PgPool> {
    if !sqlx::Postgres::database_exists(config.url.expose()).await? {
        // Another process may win the race; that is fine.
        if let Err(error) = sqlx::Postgres::create_database(config.url.expose()).await {
            if !sqlx::Postgres::database_exists(config.url.expose()).await? {
                return Err(error.into());
            }
        }
    }
    let pool = connect_with(config, settings).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub async fn connect(config: &PostgresConfig) -> anyhow::Result<PgPool> {
    connect_with(config, &[]).await
}

/// [`connect`], every connection starting with the run-time parameters `settings`.
pub async fn connect_with(
    config: &PostgresConfig,
    settings: &[(&str, &str)],
) -> anyhow::Result<PgPool> {
    let options =
        PgConnectOptions::from_str(config.url.expose())?.options(settings.iter().copied());
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(3))
        // A ping before every use (sqlx's default) costs a round trip per statement, but a
        // connection that died with a Postgres restart is then replaced unseen instead of
        // failing a request: kept (without it the Postgres-restart chaos test saw errors).
        .connect_with(options)
        .await?)
}

pub struct PostgresReadiness(pub PgPool);

#[async_trait]
impl ReadinessCheck for PostgresReadiness {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
