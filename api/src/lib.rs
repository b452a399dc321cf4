//! LinkTrace api: accounts and plans (admin), referral links, the click redirect, install
//! attribution, and analytics reads over ClickHouse.

pub mod access;
pub mod accounts;
pub mod analytics;
pub mod apps;
pub mod attributions;
pub mod clicks;
pub mod config;
pub mod dashboard_sessions;
pub mod domains;
pub mod error;
pub mod export;
pub mod link_rules;
pub mod links;
pub mod qr;
pub mod routes;
pub mod startup;
pub mod state;
pub mod webhooks;
