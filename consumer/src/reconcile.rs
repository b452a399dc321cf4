//! Rollup reconciliation: after a partial failure, make every rollup agree with `events`.
//!
//! An INSERT into `events` writes its own part first and then one part per materialized
//! view. A server killed between the two, or a replica or ZooKeeper lost between them,
//! leaves `events` holding rows that a rollup never counted. Sending the block again does
//! not mend it: a replicated table recognises the block as a duplicate, and 18.16 then
//! pushes nothing to the views (current ClickHouse can, with
//! `deduplicate_blocks_in_dependent_materialized_views`; 18.16 cannot). So the consumer
//! marks the UTC days a failed or resolved write touched (`rollup_checks` in Postgres), and
//! this module compares, for each marked day, every rollup with what its view makes of that
//! day's `events`, and inserts the difference.
//!
//! Nothing here repeats a view: each view's own query is read from the server
//! (`system.tables`), run over the day's events, and set against the rollup's rows of the
//! day. How a rollup is compared follows its engine:
//!
//! - `SummingMergeTree`: per sorting key, the sums must be equal and each sketch
//!   (`AggregateFunction` column) must hold the same value. A repair row carries the
//!   difference of each sum and the events' sketch (merging a sketch with a part of itself
//!   changes nothing).
//! - `AggregatingMergeTree`: per sorting key, each state's value; a repair row carries the
//!   events' state.
//! - `ReplacingMergeTree`: a row the view makes that the rollup lacks is inserted.
//!
//! A rollup without a time partition key (`events_kafka_offsets`) is not compared: it has no
//! day to compare by.
//!
//! **Never a repair of a write still under way.** An INSERT's `events` part can be visible
//! while its view parts are not yet. Such a write looks like a shortfall. So a day is read
//! twice, `settle` apart (longer than any write of the consumer lasts), and a difference is
//! repaired only if it is exactly the same both times *and* the day's events behind it did
//! not change: a write under way at the first read has finished by the second (the
//! difference changed or went away), and a write that began in between changed the events
//! behind the key. Each difference row is known by a hash of all of it; the repair INSERT
//! computes the difference a third time and inserts only rows whose hash was seen twice.
//!
//! On a cluster each shard is compared on its own (its local tables), read from one replica
//! with the writer's quorum settings: `select_sequential_consistency` refuses a replica
//! that lacks a quorum-written part, so both sides are read as the quorum has them.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::NaiveDate;
use clickhouse::{Client, Row};
use prometheus::{register_int_counter_vec, IntCounterVec};
use serde::Deserialize;
use sqlx::PgPool;

static REPAIRED_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "consumer_rollup_repaired_rows_total",
        "Rows inserted into a rollup to make it agree with events (after a partial failure)",
        &["table"]
    )
    .expect("registers once")
});
static UNSETTLED_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "consumer_rollup_unsettled_differences_total",
        "Differences between a rollup and events left for a later round: they changed between \
         the two reads (a write was under way)",
        &["table"]
    )
    .expect("registers once")
});

/// Registers the reconciler's metrics now.
pub fn register_metrics() {
    LazyLock::force(&REPAIRED_ROWS);
    LazyLock::force(&UNSETTLED_ROWS);
}

/// A materialized view fed by the events table, and the rollup it writes to.
#[derive(Debug, Clone)]
pub struct Rollup {
    /// The views that write to the rollup (`event_users_daily` has two: by link and all
    /// links), each with its query exactly as the server keeps it.
    pub views: Vec<String>,
    pub target: String,
    source: String,
    selects: Vec<String>,
    kind: RollupKind,
    /// The target's time column (the argument of its partition key) and whether it is a
    /// `Date`.
    time_column: String,
    time_is_date: bool,
    keys: Vec<Column>,
    sums: Vec<Column>,
    states: Vec<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RollupKind {
    Summing,
    Aggregating,
    Replacing,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// The target's type, as ClickHouse names it.
    data_type: String,
}

#[derive(Debug, Clone)]
struct State {
    name: String,
    /// The aggregate function of `AggregateFunction(f, …)`.
    function: String,
}

/// What one pass over one day did, per rollup.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DayOutcome {
    /// Rows inserted into rollups.
    pub repaired: u64,
    /// Differences seen in one read but not the same in the other: left for a later pass.
    pub unsettled: u64,
}

impl DayOutcome {
    /// The day agreed everywhere, at both reads.
    pub fn clean(&self) -> bool {
        self.repaired == 0 && self.unsettled == 0
    }
}

/// A table of the database, as `system.tables` describes it.
#[derive(Debug, Row, Deserialize)]
pub struct TableRow {
    pub name: String,
    pub engine: String,
    pub partition_key: String,
    pub create_table_query: String,
}

/// A column of the database, as `system.columns` describes it.
#[derive(Debug, Row, Deserialize)]
pub struct ColumnRow {
    pub table: String,
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub is_in_sorting_key: u8,
}

/// What [`rollups`] reads of the database: its tables.
pub const TABLES_SQL: &str = "SELECT name, engine, partition_key, create_table_query \
     FROM system.tables WHERE database = ?";
/// What [`rollups`] reads of the database: its columns.
pub const COLUMNS_SQL: &str =
    "SELECT table, name, type, is_in_sorting_key FROM system.columns WHERE database = ?";

#[derive(Row, Deserialize)]
struct DifferenceRow {
    row_hash: u64,
}

/// The views of `database` that read `events` (or a cluster's `events_local`), with their
/// rollups, as the server describes them now.
pub async fn rollups(client: &Client, database: &str) -> anyhow::Result<Vec<Rollup>> {
    let tables = client
        .query(TABLES_SQL)
        .bind(database)
        .fetch_all::<TableRow>()
        .await?;
    let columns = client
        .query(COLUMNS_SQL)
        .bind(database)
        .fetch_all::<ColumnRow>()
        .await?;
    Ok(discover(database, &tables, &columns))
}

/// The rollups of `events` among `tables`: each view's target, with the target's columns
/// that the view writes.
pub fn discover(database: &str, tables: &[TableRow], columns: &[ColumnRow]) -> Vec<Rollup> {
    fn columns_of<'a>(
        columns: &'a [ColumnRow],
        table: &'a str,
    ) -> impl Iterator<Item = &'a ColumnRow> {
        columns.iter().filter(move |c| c.table == table)
    }
    let mut out = Vec::new();
    for view in tables.iter().filter(|t| t.engine == "MaterializedView") {
        let Some((target, _, _)) = parse_view(database, &view.create_table_query) else {
            continue;
        };
        let Some(table) = tables.iter().find(|t| t.name == target) else {
            continue;
        };
        let produced: HashSet<&str> = columns_of(columns, &view.name)
            .map(|c| c.name.as_str())
            .collect();
        let target_columns = columns_of(columns, &target)
            .filter(|column| produced.contains(column.name.as_str()))
            .map(|column| TargetColumn {
                name: column.name.clone(),
                data_type: column.data_type.clone(),
                in_sorting_key: column.is_in_sorting_key == 1,
            })
            .collect();
        let Some(rollup) = Rollup::from_parts(
            database,
            &view.name,
            &view.create_table_query,
            &table.engine,
            &table.partition_key,
            target_columns,
        ) else {
            continue;
        };
        // A rollup's rows are what all of its views wrote.
        match out
            .iter_mut()
            .find(|r: &&mut Rollup| r.target == rollup.target)
        {
            Some(known) => {
                known.views.extend(rollup.views);
                known.selects.extend(rollup.selects);
            }
            None => out.push(rollup),
        }
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

/// A column of a rollup that its view writes, as `system.columns` describes it.
#[derive(Debug, Clone)]
pub struct TargetColumn {
    pub name: String,
    pub data_type: String,
    pub in_sorting_key: bool,
}

impl Rollup {
    /// A rollup from what the server says of its view (`create_table_query`) and its target
    /// (engine, partition key, and the columns the view writes). `None`: not a rollup of
    /// events that can be compared by day.
    pub fn from_parts(
        database: &str,
        view: &str,
        view_create: &str,
        engine: &str,
        partition_key: &str,
        columns: Vec<TargetColumn>,
    ) -> Option<Rollup> {
        let (target, source, select) = parse_view(database, view_create)?;
        if source != "events" && source != "events_local" {
            return None;
        }
        let kind = match engine.trim_start_matches("Replicated") {
            "SummingMergeTree" => RollupKind::Summing,
            "AggregatingMergeTree" => RollupKind::Aggregating,
            "ReplacingMergeTree" => RollupKind::Replacing,
            _ => return None,
        };
        let time_column = partition_time_column(partition_key)?;
        let mut rollup = Rollup {
            views: vec![view.to_owned()],
            target,
            source,
            selects: vec![select],
            kind,
            time_is_date: false,
            time_column,
            keys: Vec::new(),
            sums: Vec::new(),
            states: Vec::new(),
        };
        for column in columns {
            if column.name == rollup.time_column {
                rollup.time_is_date = column.data_type == "Date";
            }
            let is_key = column.in_sorting_key || kind == RollupKind::Replacing;
            if let Some(function) = aggregate_function(&column.data_type) {
                rollup.states.push(State {
                    name: column.name,
                    function,
                });
            } else if is_key {
                rollup.keys.push(Column {
                    name: column.name,
                    data_type: column.data_type,
                });
            } else if kind == RollupKind::Summing && is_number(&column.data_type) {
                rollup.sums.push(Column {
                    name: column.name,
                    data_type: column.data_type,
                });
            }
        }
        Some(rollup)
    }
}

/// `TO db.target`, `FROM db.source` and the query after `AS ` of a view's `CREATE`.
fn parse_view(database: &str, create: &str) -> Option<(String, String, String)> {
    let to = create.find(" TO ")? + 4;
    let target = create[to..].split_whitespace().next()?;
    let target = target
        .strip_prefix(&format!("{database}."))
        .unwrap_or(target)
        .trim_matches('`')
        .to_owned();
    let select_at = create.find(" AS SELECT ")? + 4;
    let select = create[select_at..].trim().to_owned();
    let from = select.find(&format!("FROM {database}."))? + 6 + database.len();
    let source: String = select[from..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    Some((target, source, select))
}

/// `query` with its first `FROM db.table` (a whole name, not a prefix of a longer one)
/// replaced by `with`.
fn replace_table(query: &str, table: &str, with: &str) -> String {
    let mut from = 0;
    while let Some(found) = query[from..].find(table) {
        let at = from + found;
        let end = at + table.len();
        let whole = query[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if whole {
            return format!("{}{with}{}", &query[..at], &query[end..]);
        }
        from = end;
    }
    query.to_owned()
}

/// `toYYYYMM(hour)` → `hour`.
fn partition_time_column(partition_key: &str) -> Option<String> {
    let inner = partition_key.strip_prefix("toYYYYMM(")?.strip_suffix(')')?;
    Some(inner.trim().to_owned())
}

/// `AggregateFunction(uniqHLL12, String)` → `uniqHLL12`.
fn aggregate_function(data_type: &str) -> Option<String> {
    let inner = data_type.strip_prefix("AggregateFunction(")?;
    Some(inner.split([',', ')']).next()?.trim().to_owned())
}

fn is_number(data_type: &str) -> bool {
    ["UInt", "Int", "Float", "Decimal"]
        .iter()
        .any(|prefix| data_type.starts_with(prefix))
}

/// The signed type a difference of a `data_type` column is computed in.
fn signed(data_type: &str) -> &str {
    if data_type.starts_with("Decimal") || data_type.starts_with("Float") {
        data_type
    } else {
        "Int64"
    }
}

impl Rollup {
    /// Each view's query over one UTC day of the source (a sub-query in place of the
    /// table), all together.
    fn select_over(&self, database: &str, day: NaiveDate) -> String {
        let next = day.succ_opt().unwrap_or(day);
        let table = format!("FROM {database}.{}", self.source);
        let windowed = format!(
            "FROM (SELECT * FROM {database}.{} WHERE event_time >= toDateTime('{day} 00:00:00') \
             AND event_time < toDateTime('{next} 00:00:00'))",
            self.source
        );
        self.selects
            .iter()
            .map(|select| replace_table(select, &table, &windowed))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// What the rollup's views make of one UTC day, counted: the least a comparison of the
    /// day must read (`bench/reconcile.sh` sets the differences query against it).
    pub fn views_over_sql(&self, database: &str, day: NaiveDate) -> String {
        format!("SELECT count() FROM ({})", self.select_over(database, day))
    }

    /// The rollup's rows of one UTC day.
    fn target_over(&self, database: &str, day: NaiveDate) -> String {
        let next = day.succ_opt().unwrap_or(day);
        let (from, to) = if self.time_is_date {
            (format!("toDate('{day}')"), format!("toDate('{next}')"))
        } else {
            (
                format!("toDateTime('{day} 00:00:00')"),
                format!("toDateTime('{next} 00:00:00')"),
            )
        };
        format!(
            "FROM {database}.{} WHERE {time} >= {from} AND {time} < {to}",
            self.target,
            time = self.time_column
        )
    }

    /// Per sorting key of one day: the difference of each sum (events minus rollup), the
    /// events' own sums, each state's value on both sides, the events' merged state, and
    /// a hash of all of it but the state (`row_hash`); only keys that differ.
    pub fn differences_sql(&self, database: &str, day: NaiveDate) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|c| format!("CAST({n} AS {t}) AS {n}", n = c.name, t = c.data_type))
            .collect();
        let side = |negate: bool, from_events: u8| {
            let mut columns = keys.clone();
            for sum in &self.sums {
                let cast = format!("CAST({} AS {})", sum.name, signed(&sum.data_type));
                columns.push(if negate {
                    format!("-{cast} AS {}", sum.name)
                } else {
                    format!("{cast} AS {}", sum.name)
                });
            }
            columns.extend(self.states.iter().map(|s| s.name.clone()));
            columns.push(format!("toUInt8({from_events}) AS from_events"));
            columns.join(", ")
        };
        let key_names: Vec<&str> = self.keys.iter().map(|c| c.name.as_str()).collect();
        let mut grouped: Vec<String> = key_names.iter().map(|k| k.to_string()).collect();
        let mut hashed: Vec<String> = key_names.iter().map(|k| format!("toString({k})")).collect();
        let mut differs: Vec<String> = Vec::new();
        for sum in &self.sums {
            grouped.push(format!("sum({n}) AS d_{n}", n = sum.name));
            grouped.push(format!(
                "sumIf({n}, from_events = 1) AS e_{n}",
                n = sum.name
            ));
            hashed.push(format!("toString(d_{})", sum.name));
            hashed.push(format!("toString(e_{})", sum.name));
            differs.push(format!("d_{} != 0", sum.name));
        }
        for state in &self.states {
            grouped.push(format!(
                "{f}MergeIf({n}, from_events = 1) AS ue_{n}, {f}MergeIf({n}, from_events = 0) AS ur_{n}, \
                 {f}MergeStateIf({n}, from_events = 1) AS s_{n}",
                f = state.function,
                n = state.name
            ));
            hashed.push(format!("toString(ue_{})", state.name));
            hashed.push(format!("toString(ur_{})", state.name));
            differs.push(format!("ue_{n} != ur_{n}", n = state.name));
        }
        grouped.push("countIf(from_events = 1) AS e_rows".into());
        grouped.push("countIf(from_events = 0) AS r_rows".into());
        hashed.push("toString(e_rows)".into());
        hashed.push("toString(r_rows)".into());
        if self.kind == RollupKind::Replacing {
            differs = vec!["e_rows > 0 AND r_rows = 0".into()];
        }
        format!(
            "SELECT *, cityHash64({hashed}) AS row_hash FROM (\
             SELECT {grouped} FROM (\
             SELECT {events_side} FROM ({select}) \
             UNION ALL \
             SELECT {rollup_side} {target}) \
             GROUP BY {key_list}) WHERE {differs}",
            hashed = hashed.join(", "),
            grouped = grouped.join(", "),
            events_side = side(false, 1),
            select = self.select_over(database, day),
            rollup_side = side(true, 0),
            target = self.target_over(database, day),
            key_list = key_names.join(", "),
            differs = differs.join(" OR "),
        )
    }

    /// Inserts the differences of one day whose `row_hash` is in `settled`.
    pub fn repair_sql(&self, database: &str, day: NaiveDate, settled: &[u64]) -> String {
        let mut columns: Vec<String> = self.keys.iter().map(|c| c.name.clone()).collect();
        let mut values = columns.clone();
        for sum in &self.sums {
            columns.push(sum.name.clone());
            values.push(format!("CAST(d_{} AS {})", sum.name, sum.data_type));
        }
        for state in &self.states {
            columns.push(state.name.clone());
            values.push(format!("s_{}", state.name));
        }
        let hashes: Vec<String> = settled.iter().map(u64::to_string).collect();
        format!(
            "INSERT INTO {database}.{target} ({columns}) SELECT {values} FROM ({differences}) \
             WHERE row_hash IN ({hashes})",
            target = self.target,
            columns = columns.join(", "),
            values = values.join(", "),
            differences = self.differences_sql(database, day),
            hashes = hashes.join(", "),
        )
    }

    async fn difference_hashes(
        &self,
        client: &Client,
        database: &str,
        day: NaiveDate,
    ) -> Result<HashSet<u64>, clickhouse::error::Error> {
        let sql = format!(
            "SELECT row_hash FROM ({})",
            self.differences_sql(database, day)
        );
        Ok(client
            .query(&sql)
            .fetch_all::<DifferenceRow>()
            .await?
            .into_iter()
            .map(|row| row.row_hash)
            .collect())
    }
}

/// Compares every rollup with `events` over `day` on one server (or one shard's replica),
/// and repairs the differences that held still for `settle`.
pub async fn reconcile_day(
    client: &Client,
    database: &str,
    rollups: &[Rollup],
    day: NaiveDate,
    settle: Duration,
) -> anyhow::Result<DayOutcome> {
    let mut first = Vec::with_capacity(rollups.len());
    for rollup in rollups {
        first.push(rollup.difference_hashes(client, database, day).await?);
    }
    if first.iter().all(HashSet::is_empty) {
        return Ok(DayOutcome::default());
    }
    tokio::time::sleep(settle).await;
    let mut outcome = DayOutcome::default();
    // Repairs are not block-deduplicated: a repair equal to an earlier one is a repair too.
    let repairer = client.clone().with_setting("insert_deduplicate", "0");
    for (rollup, first) in rollups.iter().zip(first) {
        if first.is_empty() {
            continue;
        }
        let second = rollup.difference_hashes(client, database, day).await?;
        let settled: Vec<u64> = second.intersection(&first).copied().collect();
        let unsettled = (first.len() + second.len() - 2 * settled.len()) as u64;
        outcome.unsettled += unsettled;
        UNSETTLED_ROWS
            .with_label_values(&[&rollup.target])
            .inc_by(unsettled);
        if settled.is_empty() {
            continue;
        }
        for chunk in settled.chunks(5_000) {
            repairer
                .query(&rollup.repair_sql(database, day, chunk))
                .execute()
                .await?;
        }
        tracing::warn!(
            rollup = %rollup.target,
            %day,
            rows = settled.len(),
            "repaired a rollup that disagreed with events"
        );
        REPAIRED_ROWS
            .with_label_values(&[&rollup.target])
            .inc_by(settled.len() as u64);
        outcome.repaired += settled.len() as u64;
    }
    Ok(outcome)
}

/// The UTC days in Postgres's `rollup_checks`: days a write touched that may have reached
/// `events` without every rollup.
pub struct RollupChecks {
    pool: PgPool,
}

impl RollupChecks {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Marks `days` for a check.
    pub async fn mark(&self, days: &[NaiveDate]) -> Result<(), sqlx::Error> {
        if days.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rollup_checks (day) SELECT unnest($1::date[]) \
             ON CONFLICT (day) DO UPDATE SET marked_at = now()",
        )
        .bind(days)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The marked days, oldest mark first, with when each was marked.
    pub async fn marked(
        &self,
    ) -> Result<Vec<(NaiveDate, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
        sqlx::query_as("SELECT day, marked_at FROM rollup_checks ORDER BY marked_at, day")
            .fetch_all(&self.pool)
            .await
    }

    /// Clears `day`'s mark if it was not marked again since `marked_at`.
    pub async fn clear(
        &self,
        day: NaiveDate,
        marked_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM rollup_checks WHERE day = $1 AND marked_at <= $2")
            .bind(day)
            .bind(marked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The reconciler of one consumer: one pass checks every marked day on every shard.
pub struct Reconciler {
    /// The marked days; its pool also holds the reconciler's advisory lock.
    pub checks: RollupChecks,
    /// One client per shard (the first replica of each), or the one server.
    pub shards: Vec<Client>,
    pub database: String,
    pub settle: Duration,
}

/// The Postgres advisory lock that lets one reconciler at a time run a pass.
const RECONCILER_LOCK: &str = "linktrace-rollup-reconciler";

impl Reconciler {
    /// One pass, if no other consumer's reconciler is running one. Returns the days it
    /// left clean.
    pub async fn pass(&self) -> anyhow::Result<Vec<NaiveDate>> {
        let mut lock = self.checks.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(RECONCILER_LOCK)
            .fetch_one(&mut *lock)
            .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let result = self.pass_locked().await;
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(RECONCILER_LOCK)
            .execute(&mut *lock)
            .await;
        result
    }

    async fn pass_locked(&self) -> anyhow::Result<Vec<NaiveDate>> {
        let marked = self.checks.marked().await?;
        let mut clean_days = Vec::new();
        if marked.is_empty() {
            return Ok(clean_days);
        }
        // Each shard's rollups, read from its server once per pass, not once per day.
        let mut shards = Vec::with_capacity(self.shards.len());
        for client in &self.shards {
            shards.push((client, rollups(client, &self.database).await?));
        }
        for (day, marked_at) in marked {
            let mut clean = true;
            for (client, rollups) in &shards {
                let outcome =
                    reconcile_day(client, &self.database, rollups, day, self.settle).await?;
                clean &= outcome.clean();
            }
            // A day with repairs stays marked: the next pass checks that they took.
            if clean {
                self.checks.clear(day, marked_at).await?;
                clean_days.push(day);
            }
        }
        Ok(clean_days)
    }

    /// Runs a pass every `every` (abort the task to stop it: a pass cut short leaves its
    /// days marked, and a repair is one INSERT, made or not).
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = self.pass().await {
                    tracing::warn!(%error, "rollup reconciliation pass failed; trying again later");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_views_create_statement_gives_its_target_source_and_query() {
        let create = "CREATE MATERIALIZED VIEW lt.event_counts_daily_mv TO lt.event_counts_daily \
             ( day Date,  events UInt64) AS SELECT toDate(event_time) AS day, count() AS events \
             FROM lt.events_local  WHERE bot = 0 GROUP BY day";
        let (target, source, select) = parse_view("lt", create).unwrap();
        assert_eq!(target, "event_counts_daily");
        assert_eq!(source, "events_local");
        assert!(select.starts_with("SELECT toDate(event_time)"));
        assert!(select.ends_with("GROUP BY day"));
    }

    #[test]
    fn only_the_whole_table_name_is_windowed() {
        let query = "SELECT count() FROM lt.events_local WHERE 1";
        assert_eq!(
            replace_table(query, "FROM lt.events", "FROM (x)"),
            query,
            "events is a prefix of events_local"
        );
        assert_eq!(
            replace_table(
                "SELECT 1 FROM lt.events WHERE 1",
                "FROM lt.events",
                "FROM (x)"
            ),
            "SELECT 1 FROM (x) WHERE 1"
        );
    }

    #[test]
    fn column_types_name_their_role() {
        assert_eq!(
            aggregate_function("AggregateFunction(uniqHLL12, String)").as_deref(),
            Some("uniqHLL12")
        );
        assert_eq!(aggregate_function("UInt64"), None);
        assert_eq!(
            partition_time_column("toYYYYMM(bucket)").as_deref(),
            Some("bucket")
        );
        assert_eq!(partition_time_column("tuple()"), None);
        assert_eq!(signed("UInt64"), "Int64");
        assert_eq!(signed("Decimal(38, 0)"), "Decimal(38, 0)");
    }
}
