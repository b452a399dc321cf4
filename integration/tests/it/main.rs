//! LinkTrace's integration tests: one test binary, one module per area, each test against
//! real Postgres, ClickHouse and Kafka (see `linktrace_integration::TestEnv`).
//!
//! One binary rather than one per file: on two cores, sixteen binaries each linking all four
//! services took 11.4 GB of `target/` and most of a relink (BENCHMARKS.md, "Test build").
//! Run one area with `cargo test -p linktrace-integration --test it -- clicks::`.
//! The chaos tests, which stop and restart the infrastructure, stay a binary apart
//! (`tests/chaos.rs`).

mod api;
mod clicks;
mod cluster;
mod consumer;
mod dashboard;
mod deep_links;
mod deploy_scripts;
mod export;
mod hostile_input;
mod ingest;
mod migrations;
mod openapi;
mod pipeline;
mod quota;
mod request_id;
mod revenue;
mod rollups;
mod routing;
mod webhooks;
