//! Plumbing every LinkTrace service shares. Each module owns one dependency or concern and
//! the configuration that goes with it.

pub mod body_limit;
pub mod cache;
pub mod clickhouse;
pub mod client_ip;
pub mod clock;
pub mod data_migrations;
pub mod endpoint_policy;
pub mod error;
pub mod failed_auth;
pub mod health;
pub mod http;
pub mod http_metrics;
pub mod invalidation;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod postgres;
pub mod rate_limit;
pub mod request;
pub mod request_id;
pub mod secret;
pub mod shutdown;
pub mod stream_ledger;
pub mod telemetry;
