//! LinkTrace webhook worker. Two halves joined by a Postgres outbox:
//!
//! - [`intake`]: a consumer group of its own on the events topic. It waits until storage
//!   has settled each event ([`settlement`]), keeps those that were stored at that very
//!   position on the stream (so a copy is never delivered as a new event), matches them
//!   with the webhooks subscribed ([`subscriptions`]) and writes one outbox row per
//!   (webhook, event) — keyed, so a redelivered batch collapses — before it commits.
//! - [`dispatcher`]: claims due rows per webhook, each webhook with its own concurrency, so a
//!   slow or dead endpoint only ever holds its own slots; POSTs them signed ([`delivery`],
//!   [`signature`]); records every attempt and schedules the next one ([`retry`]).

pub mod config;
pub mod delivery;
pub mod dispatcher;
pub mod intake;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod resolver;
pub mod retry;
pub mod settlement;
pub mod signature;
pub mod startup;
pub mod subscriptions;
