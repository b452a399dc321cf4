use serde::{Deserialize, Serialize};

/// Which of an account's two keys sent an event. Only `Live` events count against, or are
/// blocked by, the monthly quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    /// The value stored in ClickHouse's `environment` column, as the API docs name it.
    pub fn storage_name(self) -> &'static str {
        match self {
            Environment::Live => "production",
            Environment::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}
