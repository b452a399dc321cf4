//! Exactly-once rows: how a batch is cut into INSERTs so that no redelivery can store a row
//! twice, and `count()` over the raw table is right at any moment.
//!
//! Every row carries its topic, partition and offset. A partition's rows are written in
//! increasing offset order, as runs that are each one INSERT into one table partition (one
//! ClickHouse part, so each run is stored whole or not at all). How far a partition is
//! settled comes from the stream ledger in Postgres (`linktrace_platform::stream_ledger`),
//! never from ClickHouse, whose replicas may lag; the consumer writes only the rows above
//! it. Whatever was redelivered — after a crash between write and commit, a failed commit,
//! a rebalance, or a write that timed out on our side but succeeded on the server — is at
//! or below it once the ledger is settled or the open write resolved.

use chrono::{DateTime, Datelike};

use crate::row::EventRow;

/// Sorts `rows` by (partition, offset) and cuts them into runs: a run ends where the
/// partition changes, or where the UTC month of `event_time` does (the events table is
/// partitioned by month, and an INSERT that spans two table partitions is two parts).
/// The server's time zone must be UTC, as every config of ours sets it.
pub fn runs(rows: &mut [EventRow]) -> Vec<&[EventRow]> {
    rows.sort_by_key(EventRow::position);
    let mut out = Vec::new();
    let mut rest: &[EventRow] = rows;
    while let Some(first) = rest.first() {
        let key = (first.kafka_partition, month(first.event_time));
        let len = rest
            .iter()
            .position(|row| (row.kafka_partition, month(row.event_time)) != key)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(len);
        out.push(run);
        rest = tail;
    }
    out
}

/// The rows of `run` (sorted by offset, one partition) above `settled_through`.
pub fn above(run: &[EventRow], settled_through: i64) -> &[EventRow] {
    &run[run.partition_point(|row| (row.kafka_offset as i64) <= settled_through)..]
}

fn month(seconds: u32) -> (i32, u32) {
    DateTime::from_timestamp(seconds.into(), 0)
        .map(|at| (at.year(), at.month()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(partition: u16, offset: u64, event_time: u32) -> EventRow {
        EventRow {
            event_id: format!("{partition}-{offset}"),
            event_time,
            event_time_ms: u64::from(event_time) * 1000,
            received_at: event_time,
            kafka_topic: "t".into(),
            kafka_partition: partition,
            kafka_offset: offset,
            ..EventRow::default()
        }
    }

    const NOV_30_2026_2359: u32 = 1_796_083_140;
    const DEC_1_2026_0001: u32 = 1_796_083_260;

    fn offsets(run: &[EventRow]) -> Vec<(u16, u64)> {
        run.iter()
            .map(|r| (r.kafka_partition, r.kafka_offset))
            .collect()
    }

    #[test]
    fn runs_are_per_partition_in_offset_order() {
        let mut rows = vec![
            row(1, 7, NOV_30_2026_2359),
            row(0, 5, NOV_30_2026_2359),
            row(1, 6, NOV_30_2026_2359),
            row(0, 4, NOV_30_2026_2359),
        ];
        let runs = runs(&mut rows);
        assert_eq!(runs.len(), 2);
        assert_eq!(offsets(runs[0]), vec![(0, 4), (0, 5)]);
        assert_eq!(offsets(runs[1]), vec![(1, 6), (1, 7)]);
    }

    #[test]
    fn a_month_boundary_cuts_a_run_in_offset_order() {
        let mut rows = vec![
            row(0, 1, NOV_30_2026_2359),
            row(0, 2, DEC_1_2026_0001),
            row(0, 3, NOV_30_2026_2359),
        ];
        let runs = runs(&mut rows);
        let runs: Vec<Vec<(u16, u64)>> = runs.iter().map(|r| offsets(r)).collect();
        assert_eq!(runs, vec![vec![(0, 1)], vec![(0, 2)], vec![(0, 3)]]);
    }

    #[test]
    fn only_rows_above_the_settled_offset_are_written() {
        let mut rows: Vec<EventRow> = (10..20).map(|o| row(2, o, NOV_30_2026_2359)).collect();
        let runs = runs(&mut rows);
        assert_eq!(
            offsets(above(runs[0], 14)),
            (15..20).map(|o| (2, o)).collect::<Vec<_>>()
        );
        assert!(above(runs[0], 19).is_empty());
        assert_eq!(above(runs[0], -1).len(), 10);
    }
}
