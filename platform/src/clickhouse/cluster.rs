//! Cluster mode: the same migrations on a ClickHouse cluster. Each table becomes a
//! `Replicated*` table per shard (`<name>_local`) with a `Distributed` table under its own
//! name over it, so every read of ours and every customer's SQL stays as it is. The
//! materialized views run on the local tables (each shard rolls up its own rows), and every
//! statement goes to all nodes with `ON CLUSTER`.
//!
//! A cluster starts empty: the statements that rework rows a single server already held
//! (backfills of new rollups, `OPTIMIZE … FINAL`) have no cluster form.
//!
//! `events` is sharded by `kafka_partition`: one INSERT run of the consumer (one partition)
//! lands on one shard as one part, which the shard's replicas deduplicate by content when
//! the same block is sent again. The rollups are only ever written by their views.

/// One cluster of ours: its name in `remote_servers`, and our database on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub database: String,
}

/// `client` with writes that answer once two replicas have them (`insert_quorum`) and reads
/// refused by a replica that lacks such a write (`select_sequential_consistency`).
pub fn quorum(client: clickhouse::Client) -> clickhouse::Client {
    client
        .with_setting("insert_quorum", "2")
        .with_setting("select_sequential_consistency", "1")
}

/// The suffix of the per-shard tables.
pub const LOCAL: &str = "_local";

impl Cluster {
    pub fn create_database(&self) -> String {
        format!(
            "CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {}",
            self.database, self.name
        )
    }

    /// The record of applied migrations: one replicated table that every node holds whole.
    pub fn schema_migrations_table(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations ON CLUSTER {c} \
             (version UInt32, name String, applied_at DateTime) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{db}/schema_migrations', '{{shard}}-{{replica}}') \
             ORDER BY version",
            db = self.database,
            c = self.name
        )
    }

    /// The statements that do on the cluster what `statement` does on one server.
    pub fn rewrite(&self, statement: &str) -> Vec<String> {
        let trimmed = statement.trim();
        let upper = trimmed.to_ascii_uppercase();
        if let Some(rest) = strip(&upper, trimmed, "CREATE TABLE IF NOT EXISTS ") {
            return self.create_table(rest);
        }
        if let Some(rest) = strip(&upper, trimmed, "CREATE MATERIALIZED VIEW IF NOT EXISTS ") {
            return vec![self.create_view(rest)];
        }
        if let Some(rest) = strip(&upper, trimmed, "ALTER TABLE ") {
            return self.alter(rest);
        }
        if upper.starts_with("OPTIMIZE TABLE ") {
            // Merges rows a single server held before a migration; a cluster starts empty.
            // (18.16 answered "Unknown log entry type: 0" to it on a fresh replicated table.)
            return Vec::new();
        }
        if let Some(rest) = strip(&upper, trimmed, "TRUNCATE TABLE ") {
            return vec![format!(
                "TRUNCATE TABLE {}{LOCAL} ON CLUSTER {}",
                self.qualified(rest.trim()),
                self.name
            )];
        }
        if let Some(rest) = strip(&upper, trimmed, "DROP TABLE IF EXISTS ") {
            let name = rest.trim();
            return vec![
                format!(
                    "DROP TABLE IF EXISTS {} ON CLUSTER {}",
                    self.qualified(name),
                    self.name
                ),
                format!(
                    "DROP TABLE IF EXISTS {}{LOCAL} ON CLUSTER {}",
                    self.qualified(name),
                    self.name
                ),
            ];
        }
        if upper.starts_with("INSERT INTO ") {
            // The backfills of new rollups from rows a single server held: a cluster starts
            // empty (a mid-migration Distributed table would not have the new columns yet).
            return Vec::new();
        }
        vec![trimmed.to_owned()]
    }

    fn qualified(&self, name: &str) -> String {
        format!("{}.{}", self.database, name)
    }

    fn create_table(&self, rest: &str) -> Vec<String> {
        let (name, body) = split_name(rest);
        let local = format!("{name}{LOCAL}");
        let body = replicate_engine(
            body,
            &format!(
                "'/clickhouse/tables/{{shard}}/{}/{local}', '{{replica}}'",
                self.database
            ),
        );
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {} ON CLUSTER {} {body}",
                self.qualified(&local),
                self.name
            ),
            self.distributed(name, body.contains("kafka_partition")),
        ]
    }

    /// The Distributed table `name` over the shards' `<name>_local`, sharded by the Kafka
    /// partition when it has one (events, from migration 3 on).
    fn distributed(&self, name: &str, by_partition: bool) -> String {
        let sharding_key = if by_partition {
            "kafka_partition"
        } else {
            "rand()"
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {} ON CLUSTER {c} AS {}{LOCAL} \
             ENGINE = Distributed({c}, {}, {name}{LOCAL}, {sharding_key})",
            self.qualified(name),
            self.qualified(name),
            self.database,
            c = self.name
        )
    }

    fn create_view(&self, rest: &str) -> String {
        let (name, body) = split_name(rest);
        // `TO target AS SELECT … FROM source …`: both become the shard's local tables.
        let body = body.trim_start();
        let after_to = body["TO ".len()..].trim_start();
        let (target, select) = split_name(after_to);
        let select = local_sources(select.trim_start(), &self.database);
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {} ON CLUSTER {} TO {}{LOCAL} {select}",
            self.qualified(name),
            self.name,
            self.qualified(target)
        )
    }

    fn alter(&self, rest: &str) -> Vec<String> {
        // Columns and mutations alike change the local tables (where the rows live); the
        // Distributed table follows in [`Self::rewrite_migration`].
        let (name, action) = split_name(rest);
        vec![format!(
            "ALTER TABLE {}{LOCAL} ON CLUSTER {} {}",
            self.qualified(name),
            self.name,
            action.trim_start()
        )]
    }

    /// A whole migration's statements in their cluster form. A table whose columns it
    /// changed gets its Distributed table made again at the end, with the local table's
    /// columns: 18.16 refuses an `ALTER … ON CLUSTER` of a table that is not replicated on
    /// a cluster whose shards are ("Table … isn't replicated, but shard #2 is replicated").
    pub fn rewrite_migration(&self, statements: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut altered: Vec<String> = Vec::new();
        for statement in statements {
            let upper = statement.trim().to_ascii_uppercase();
            if let Some(rest) = strip(&upper, statement.trim(), "ALTER TABLE ") {
                let (name, action) = split_name(rest);
                let action = action.trim_start().to_ascii_uppercase();
                let changes_columns = ["ADD COLUMN", "MODIFY COLUMN", "DROP COLUMN"]
                    .iter()
                    .any(|verb| action.starts_with(verb));
                if changes_columns && !altered.iter().any(|t| t == name) {
                    altered.push(name.to_owned());
                }
            }
            out.extend(self.rewrite(statement));
        }
        for table in altered {
            out.push(format!(
                "DROP TABLE IF EXISTS {} ON CLUSTER {}",
                self.qualified(&table),
                self.name
            ));
            out.push(self.distributed(&table, table == "events"));
        }
        out
    }
}

fn strip<'a>(upper: &str, original: &'a str, prefix: &str) -> Option<&'a str> {
    upper.starts_with(prefix).then(|| &original[prefix.len()..])
}

/// `name rest…` → (`name`, `rest…`); the name ends at whitespace or `(`.
fn split_name(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// `… ENGINE = SummingMergeTree(args) …` → `… ENGINE = ReplicatedSummingMergeTree(path,
/// replica[, args]) …`.
fn replicate_engine(body: &str, replication: &str) -> String {
    let upper = body.to_ascii_uppercase();
    let Some(at) = upper.find("ENGINE = ") else {
        return body.to_owned();
    };
    let engine_start = at + "ENGINE = ".len();
    let open = engine_start + body[engine_start..].find('(').unwrap_or(0);
    let close = open + body[open..].find(')').unwrap_or(0);
    let engine = &body[engine_start..open];
    let args = body[open + 1..close].trim();
    let args = if args.is_empty() {
        replication.to_owned()
    } else {
        format!("{replication}, {args}")
    };
    format!(
        "{}Replicated{engine}({args}){}",
        &body[..engine_start],
        &body[close + 1..]
    )
}

/// Every `FROM events` (the views' one source) reads the shard's local table instead
/// (qualified: a distributed DDL runs in each node's default database).
fn local_sources(select: &str, database: &str) -> String {
    let mut out = String::with_capacity(select.len() + 16);
    let mut rest = select;
    while let Some(at) = rest.find("FROM events") {
        let after = &rest[at + "FROM events".len()..];
        let whole_word = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if whole_word {
            out.push_str(&rest[..at]);
            out.push_str(&format!("FROM {database}.events{LOCAL}"));
        } else {
            out.push_str(&rest[..at + "FROM events".len()]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::{statements, MIGRATIONS};

    fn cluster() -> Cluster {
        Cluster {
            name: "linktrace".into(),
            database: "lt".into(),
        }
    }

    #[test]
    fn a_table_becomes_replicated_shards_under_a_distributed_table_of_its_name() {
        let sql = "CREATE TABLE IF NOT EXISTS events\n(\n    event_id String,\n    kafka_partition UInt16\n)\nENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(event_time)\nORDER BY (event_id)";
        let out = cluster().rewrite(sql);
        assert_eq!(out.len(), 2);
        assert!(out[0]
            .starts_with("CREATE TABLE IF NOT EXISTS lt.events_local ON CLUSTER linktrace \n("));
        assert!(out[0].contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/lt/events_local', '{replica}')\nPARTITION BY"
        ));
        assert_eq!(
            out[1],
            "CREATE TABLE IF NOT EXISTS lt.events ON CLUSTER linktrace AS lt.events_local \
             ENGINE = Distributed(linktrace, lt, events_local, kafka_partition)"
        );
        // Before migration 3 gave it a Kafka partition, events was sharded at random.
        let first = cluster().rewrite(crate::clickhouse::statements(MIGRATIONS[0].sql)[0].as_str());
        assert!(first[1].ends_with("Distributed(linktrace, lt, events_local, rand())"));
        let with_args = cluster().rewrite(
            "CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = ReplacingMergeTree(a) ORDER BY a",
        );
        assert!(with_args[0].contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/lt/x_local', '{replica}', a)"
        ));
        assert!(with_args[1].ends_with("Distributed(linktrace, lt, x_local, rand())"));
    }

    #[test]
    fn views_read_and_write_the_shards_local_tables() {
        let sql = "CREATE MATERIALIZED VIEW IF NOT EXISTS v_mv TO rollup AS\nSELECT a, count() AS n\nFROM events\nWHERE events_seen = 0\nGROUP BY a";
        assert_eq!(
            cluster().rewrite(sql),
            ["CREATE MATERIALIZED VIEW IF NOT EXISTS lt.v_mv ON CLUSTER linktrace TO lt.rollup_local AS\nSELECT a, count() AS n\nFROM lt.events_local\nWHERE events_seen = 0\nGROUP BY a"]
        );
    }

    #[test]
    fn column_changes_go_to_the_shards_and_the_distributed_table_is_made_again() {
        let migration = [
            "ALTER TABLE events ADD COLUMN x UInt8 DEFAULT 0".to_owned(),
            "ALTER TABLE events ADD COLUMN y UInt8 DEFAULT 0".to_owned(),
            "ALTER TABLE events UPDATE os = 'iOS' WHERE os = 'iPhone'".to_owned(),
        ];
        assert_eq!(
            cluster().rewrite_migration(&migration),
            [
                "ALTER TABLE lt.events_local ON CLUSTER linktrace ADD COLUMN x UInt8 DEFAULT 0",
                "ALTER TABLE lt.events_local ON CLUSTER linktrace ADD COLUMN y UInt8 DEFAULT 0",
                "ALTER TABLE lt.events_local ON CLUSTER linktrace UPDATE os = 'iOS' WHERE os = 'iPhone'",
                "DROP TABLE IF EXISTS lt.events ON CLUSTER linktrace",
                "CREATE TABLE IF NOT EXISTS lt.events ON CLUSTER linktrace AS lt.events_local \
                 ENGINE = Distributed(linktrace, lt, events_local, kafka_partition)"
            ]
        );
        assert_eq!(
            cluster().rewrite("DROP TABLE IF EXISTS old_mv"),
            [
                "DROP TABLE IF EXISTS lt.old_mv ON CLUSTER linktrace",
                "DROP TABLE IF EXISTS lt.old_mv_local ON CLUSTER linktrace"
            ]
        );
    }

    #[test]
    fn every_migration_statement_has_a_cluster_form() {
        for migration in MIGRATIONS {
            for statement in statements(migration.sql) {
                let out = cluster().rewrite(&statement);
                let upper = statement.to_ascii_uppercase();
                if upper.starts_with("INSERT") || upper.starts_with("OPTIMIZE") {
                    assert!(out.is_empty());
                } else {
                    assert!(
                        out.iter().all(|s| s.contains(" ON CLUSTER linktrace")),
                        "{} has no cluster form: {statement}",
                        migration.name
                    );
                }
            }
        }
    }
}
