//! Analytics: every read of counts over ClickHouse, in one place.
//!
//! - [`reports`]: the rollup reports (`/api/v1/analytics/{totals,timeseries,funnel,top-links}`
//!   and a link's totals), read from the hourly and daily count rollups.
//! - [`breakdowns`]: `GET /api/v1/analytics`, counts, series and breakdowns by any click
//!   fact, read from the fifteen-minute breakdown rollup.
//!
//! What they share lives once: the time range and its rule ([`range`]), the series' bucket
//! ([`interval`]), which events are counted ([`event`]), and SQL built with its bound values
//! ([`sql`]). The export (`crate::export`) uses the same range, selector and SQL.

pub mod breakdowns;
pub mod event;
pub mod interval;
pub mod range;
pub mod reports;
pub mod sql;

pub use event::{EventNameParam, EventParam, EventSelector};
pub use interval::Interval;
pub use range::{RangeBound, RangeRule, Zone};
