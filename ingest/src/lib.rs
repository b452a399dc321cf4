//! LinkTrace ingest: the event endpoints. A request is authenticated (cached), validated,
//! checked against plan, link ownership, dedup and quota, produced to Kafka, and answered
//! once the broker has acknowledged it.

pub mod claims;
pub mod config;
pub mod conversion;
pub mod directory;
pub mod error;
pub mod group_commit;
pub mod idempotency;
pub mod in_flight;
pub mod intake;
pub mod metrics;
pub mod quota;
pub mod routes;
pub mod startup;
