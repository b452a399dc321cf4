//! LinkTrace consumer: reads the events topic as a consumer group and writes batches to
//! ClickHouse, so that every accepted event is stored exactly once in effect.

pub mod config;
pub mod context;
pub mod metrics;
pub mod pipeline;
pub mod row;
pub mod startup;
pub mod stored;
pub mod writer;
