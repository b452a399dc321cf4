//! Plumbing every LinkTrace service shares. Each module owns one dependency or concern and
//! the configuration that goes with it.

pub mod body_limit;
pub mod cache;
pub mod clickhouse;
pub mod clock;
pub mod endpoint_policy;
pub mod error;
pub mod health;
pub mod http;
pub mod http_metrics;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod postgres;
pub mod request;
pub mod request_id;
pub mod shutdown;
pub mod telemetry;
