use std::fmt;

/// How an install was attributed (`attributions.match_type`, and the answer's `matchType`):
/// by the short code the app sent, the click id, a fingerprint of the device's recent
/// click, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributionMatch {
    /// A click id the app read from Google Play's install referrer.
    InstallReferrer,
    ShortCode,
    ClickId,
    Fingerprint,
    Organic,
}

impl AttributionMatch {
    const ALL: [AttributionMatch; 5] = [
        AttributionMatch::InstallReferrer,
        AttributionMatch::ShortCode,
        AttributionMatch::ClickId,
        AttributionMatch::Fingerprint,
        AttributionMatch::Organic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttributionMatch::InstallReferrer => "install_referrer",
            AttributionMatch::ShortCode => "short_code",
            AttributionMatch::ClickId => "click_id",
            AttributionMatch::Fingerprint => "fingerprint",
            AttributionMatch::Organic => "organic",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// Every match type, in the order they are tried.
    pub fn all() -> [AttributionMatch; 5] {
        Self::ALL
    }
}

impl TryFrom<String> for AttributionMatch {
    type Error = crate::ParseError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or_else(|| crate::ParseError::new(format!("unknown match type {raw}")))
    }
}

impl fmt::Display for AttributionMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_match_type_round_trips() {
        for kind in AttributionMatch::ALL {
            assert_eq!(AttributionMatch::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AttributionMatch::parse("guess"), None);
    }
}
