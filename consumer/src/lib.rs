//! LinkTrace consumer: reads the events topic as a consumer group and writes batches to
//! ClickHouse, so that every accepted event is stored as exactly one row.

pub mod config;
pub mod exactly_once;
pub mod metrics;
pub mod pipeline;
pub mod recent;
pub mod reconcile;
pub mod row;
pub mod startup;
pub mod stored;
pub mod writer;
