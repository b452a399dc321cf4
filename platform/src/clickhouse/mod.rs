//! ClickHouse: configuration, the client, our versioned migration runner and the readiness
//! check. SQL here and in `migrations/clickhouse` runs on ClickHouse 18.16 and on current
//! releases alike.

use async_trait::async_trait;
use clickhouse::{Client, Row};
use envconfig::Envconfig;
use serde::Deserialize;
use sqlx::PgPool;

use crate::health::ReadinessCheck;
use crate::secret::Secret;

pub mod cluster;
pub use cluster::Cluster;

#[derive(Envconfig, Clone, Debug)]
pub struct ClickHouseConfig {
    #[envconfig(from = "CLICKHOUSE_URL", default = "http://127.0.0.1:8123")]
    pub url: String,
    #[envconfig(from = "CLICKHOUSE_DATABASE", default = "linktrace")]
    pub database: String,
    #[envconfig(from = "CLICKHOUSE_USER", default = "default")]
    pub user: String,
    #[envconfig(from = "CLICKHOUSE_PASSWORD", default = "")]
    pub password: Secret,
    /// Cluster mode: the cluster's name in the servers' `remote_servers` (see
    /// [`cluster`]). Empty: one server.
    #[envconfig(from = "CLICKHOUSE_CLUSTER", default = "")]
    pub cluster: String,
    /// Cluster mode: each shard's replicas as HTTP URLs, in the order of the cluster's
    /// `remote_servers` — replicas separated by `,`, shards by `;` (e.g.
    /// `http://ch1:8123,http://ch2:8123;http://ch3:8123,http://ch4:8123`). With them the
    /// consumer writes each run straight to its shard's local table, so a shard that cannot
    /// take a write (a replica down: no quorum) holds up only its own partitions. Empty:
    /// writes go through the Distributed table.
    #[envconfig(from = "CLICKHOUSE_SHARDS", default = "")]
    pub shards: String,
}

/// The highest Kafka offset stored in `events`, per partition of one topic, from the
/// `events_kafka_offsets` rollup. Asked only where one consistent server answers: to start
/// the stream ledger of a deployment that predates it, and to resolve a write left open.
pub const STORED_OFFSETS_SQL: &str = "SELECT kafka_partition, maxMerge(max_offset) AS max_offset \
     FROM events_kafka_offsets WHERE kafka_topic = ? GROUP BY kafka_partition";

/// [`STORED_OFFSETS_SQL`] for `topic`: partition → highest stored offset.
pub async fn stored_offsets(
    client: &Client,
    topic: &str,
) -> Result<std::collections::HashMap<i32, i64>, clickhouse::error::Error> {
    #[derive(Row, Deserialize)]
    struct PartitionMark {
        kafka_partition: u16,
        max_offset: u64,
    }
    let marks = client
        .query(STORED_OFFSETS_SQL)
        .bind(topic)
        .fetch_all::<PartitionMark>()
        .await?;
    Ok(marks
        .into_iter()
        .map(|mark| (i32::from(mark.kafka_partition), mark.max_offset as i64))
        .collect())
}

impl ClickHouseConfig {
    /// The cluster this config names, if any.
    pub fn on_cluster(&self) -> Option<Cluster> {
        (!self.cluster.is_empty()).then(|| Cluster {
            name: self.cluster.clone(),
            database: self.database.clone(),
        })
    }

    /// A client for the consumer's writes. On a cluster an INSERT answers only once its
    /// shard has it (`insert_distributed_sync`; the Distributed table would otherwise only
    /// queue it) on two replicas (`insert_quorum`), and a read of what is stored is refused
    /// by a replica that lacks a quorum write (`select_sequential_consistency`).
    pub fn writer_client(&self) -> Client {
        let client = self.client();
        if self.cluster.is_empty() {
            return client;
        }
        cluster::quorum(client).with_setting("insert_distributed_sync", "1")
    }

    /// The writer clients of each shard's replicas ([`ClickHouseConfig::shards`]), in shard
    /// order; each INSERT on one needs a quorum of its shard's replicas. Empty outside cluster
    /// mode or without `shards`.
    pub fn shard_writer_clients(&self) -> Vec<Vec<Client>> {
        if self.cluster.is_empty() {
            return Vec::new();
        }
        self.shards
            .split(';')
            .map(|shard| {
                shard
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(|url| {
                        cluster::quorum(
                            ClickHouseConfig {
                                url: url.to_owned(),
                                ..self.clone()
                            }
                            .client(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|replicas| !replicas.is_empty())
            .collect()
    }

    /// A client bound to the configured database. Row validation is off: ClickHouse 18.16
    /// has no `RowBinaryWithNamesAndTypes`.
    pub fn client(&self) -> Client {
        self.server_client().with_database(&self.database)
    }

    /// A client with no database selected, for `CREATE DATABASE`.
    fn server_client(&self) -> Client {
        Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(self.password.expose())
            .with_validation(false)
    }

    /// Creates the database if it is missing, applies pending migrations, then the data
    /// migrations that rewrite Postgres from ClickHouse's rows ([`crate::data_migrations`]). Services that
    /// start together (api and consumer) serialise on a Postgres advisory lock named after
    /// this ClickHouse database, so the runner never races itself; the lock goes with the
    /// connection if the process dies.
    pub async fn ensure_schema(&self, lock: &PgPool) -> anyhow::Result<usize> {
        validate_identifier(&self.database)?;
        let mut connection = lock.acquire().await?;
        // Named after the database, not the server: services given different nodes of one
        // cluster still take turns.
        let name = format!("linktrace clickhouse migrations {}", self.database);
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&name)
            .execute(&mut *connection)
            .await?;
        let mut applied = self.ensure_schema_holding_lock().await;
        if applied.is_ok() {
            if let Err(error) = crate::data_migrations::run(lock, &self.client()).await {
                applied = Err(error);
            }
        }
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&name)
            .execute(&mut *connection)
            .await?;
        applied
    }

    async fn ensure_schema_holding_lock(&self) -> anyhow::Result<usize> {
        let cluster = self.on_cluster();
        let create = match &cluster {
            Some(cluster) => cluster.create_database(),
            None => format!("CREATE DATABASE IF NOT EXISTS {}", self.database),
        };
        execute_schema_statement(&self.server_client(), &create).await?;
        migrate_to(&self.client(), u32::MAX, cluster.as_ref()).await
    }

    /// Drops the database (tests only).
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        validate_identifier(&self.database)?;
        let drop = match self.on_cluster() {
            Some(cluster) => format!(
                "DROP DATABASE IF EXISTS {} ON CLUSTER {}",
                self.database, cluster.name
            ),
            None => format!("DROP DATABASE IF EXISTS {}", self.database),
        };
        execute_schema_statement(&self.server_client(), &drop).await?;
        Ok(())
    }
}

fn validate_identifier(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    anyhow::ensure!(ok, "invalid ClickHouse database name {name:?}");
    Ok(())
}

/// One versioned ClickHouse migration. Its statements must be idempotent (`IF NOT EXISTS`):
/// ClickHouse has no transactional DDL, so a half-applied migration is simply re-run.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../../../migrations/clickhouse/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "events_hourly_rollup",
        sql: include_str!("../../../migrations/clickhouse/0002_events_hourly_rollup.sql"),
    },
    Migration {
        version: 3,
        name: "exactly_once_rollups",
        sql: include_str!("../../../migrations/clickhouse/0003_exactly_once_rollups.sql"),
    },
    Migration {
        version: 4,
        name: "click_facts",
        sql: include_str!("../../../migrations/clickhouse/0004_click_facts.sql"),
    },
    Migration {
        version: 5,
        name: "exact_revenue_sums",
        sql: include_str!("../../../migrations/clickhouse/0005_exact_revenue_sums.sql"),
    },
    Migration {
        version: 6,
        name: "os_families",
        sql: include_str!("../../../migrations/clickhouse/0006_os_families.sql"),
    },
    Migration {
        version: 7,
        name: "repeat_clicks",
        sql: include_str!("../../../migrations/clickhouse/0007_repeat_clicks.sql"),
    },
    Migration {
        version: 8,
        name: "deterministic_rows",
        sql: include_str!("../../../migrations/clickhouse/0008_deterministic_rows.sql"),
    },
    Migration {
        version: 9,
        name: "unique_visitors",
        sql: include_str!("../../../migrations/clickhouse/0009_unique_visitors.sql"),
    },
];

#[derive(Row, Deserialize)]
struct AppliedVersion {
    version: u32,
}

/// Applies every migration not yet recorded in `schema_migrations`, in order. Returns how
/// many it applied; a second run applies none.
pub async fn migrate(client: &Client) -> anyhow::Result<usize> {
    migrate_to(client, u32::MAX, None).await
}

/// As [`migrate`], stopping after `last_version` (tests build an older schema with it), on
/// `cluster` when one is given: each statement in its cluster form, and the record of
/// applied migrations one replicated table, written to a quorum and read consistently.
pub async fn migrate_to(
    client: &Client,
    last_version: u32,
    cluster: Option<&Cluster>,
) -> anyhow::Result<usize> {
    let record = match cluster {
        Some(cluster) => cluster.schema_migrations_table(),
        None => "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) \
             ENGINE = MergeTree() ORDER BY version"
            .to_owned(),
    };
    execute_schema_statement(client, &record).await?;
    let client = &match cluster {
        Some(_) => cluster::quorum(client.clone()),
        None => client.clone(),
    };
    let applied: Vec<u32> = client
        .query("SELECT version FROM schema_migrations")
        .fetch_all::<AppliedVersion>()
        .await?
        .into_iter()
        .map(|row| row.version)
        .collect();
    let mut count = 0;
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version <= last_version && !applied.contains(&m.version));
    for migration in pending {
        let statements: Vec<String> = match cluster {
            Some(cluster) => cluster.rewrite_migration(&statements(migration.sql)),
            None => statements(migration.sql),
        };
        for statement in statements {
            match execute_schema_statement(client, &statement).await {
                Ok(()) => {}
                // A re-run after a partial one: 18.16 has no ADD COLUMN IF NOT EXISTS.
                Err(error)
                    if adds_a_column(&statement) && error.to_string().contains("Code: 44") =>
                {
                    tracing::info!(%statement, "column exists already");
                }
                Err(error) => anyhow::bail!(
                    "ClickHouse migration {} ({}) failed: {error}",
                    migration.version,
                    migration.name
                ),
            }
        }
        client
            .query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied ClickHouse migration"
        );
        count += 1;
    }
    Ok(count)
}

/// How long a schema statement is sent again while ZooKeeper errors refuse it.
const COORDINATION_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(90);

/// Runs one schema statement (idempotent, as every migration statement is), sending it
/// again while the server answers with a ZooKeeper error. After a ZooKeeper restart or a
/// network blip a server's session is gone: its next `ON CLUSTER` statement is refused with
/// `Session expired` or `Connection loss`, and the server opens a new session for the one
/// after. Without this a service started just then failed its migrations (and so its start).
async fn execute_schema_statement(
    client: &Client,
    statement: &str,
) -> Result<(), clickhouse::error::Error> {
    let deadline = std::time::Instant::now() + COORDINATION_RETRY_FOR;
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match client.query(statement).execute().await {
            Err(error) if is_transient(&error) && std::time::Instant::now() < deadline => {
                tracing::warn!(%error, statement, "a schema statement failed on the way; sending it again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Worth sending a schema statement again (every one is idempotent: `IF [NOT] EXISTS`): ZooKeeper
/// refused it, or the connection broke before the answer (a node that was just restarted
/// closed it: "connection closed before message completed", seen on the test cluster).
fn is_transient(error: &clickhouse::error::Error) -> bool {
    matches!(error, clickhouse::error::Error::Network(_)) || is_coordination_error(error)
}

/// A ZooKeeper error (`KEEPER_EXCEPTION`, code 999), as 18.16 and current releases word it.
fn is_coordination_error(error: &clickhouse::error::Error) -> bool {
    let text = error.to_string();
    text.contains("Code: 999") || text.contains("Coordination::Exception")
}

fn adds_a_column(statement: &str) -> bool {
    let upper = statement.to_ascii_uppercase();
    upper.starts_with("ALTER TABLE") && upper.contains(" ADD COLUMN ")
}

/// Splits a migration file into statements: `;` at the end of a line ends one; `--` lines
/// are comments.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').to_owned();
            out.push(statement);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

pub struct ClickHouseReadiness(pub Client);

#[async_trait]
impl ReadinessCheck for ClickHouseReadiness {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .query("SELECT 1")
            .execute()
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_and_a_zookeeper_refusal_are_sent_again_a_bad_statement_is_not() {
        use clickhouse::error::Error;
        let closed = Error::Network("connection closed before message completed".into());
        assert!(is_transient(&closed));
        assert!(is_transient(&Error::BadResponse(
            "Code: 999, e.displayText() = Coordination::Exception: Connection loss".into()
        )));
        assert!(!is_transient(&Error::BadResponse(
            "Code: 62, e.displayText() = DB::Exception: Syntax error".into()
        )));
    }

    #[test]
    fn splits_statements_and_skips_comments() {
        let sql = "-- a comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nCREATE TABLE b (y UInt8) ENGINE = Memory;\n";
        let parts = statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("CREATE TABLE a"));
        assert!(!parts[1].ends_with(';'));
    }

    #[test]
    fn every_migration_has_a_unique_increasing_version() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }
}
