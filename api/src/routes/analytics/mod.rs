//! `/api/v1/analytics*`: the handlers of the reads in `crate::analytics`, scoped to the
//! caller's account and the key's environment (a test key reads test events).

pub mod breakdowns;
pub mod reports;
