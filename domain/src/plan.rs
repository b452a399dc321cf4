use std::fmt;

use crate::ParseError;

/// A plan's name as stored in Postgres (`free`, `scale`, or any plan added as data).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanName(String);

impl PlanName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ParseError::new(
                "must be a plan name such as \"free\" or \"scale\"",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::text_value!(PlanName);

impl utoipa::PartialSchema for PlanName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::text(
            Some("^(free|scale)$"),
            None,
            Some(32),
            "a plan in the plans table: free and scale ship; more may be added as data",
        )
    }
}

impl utoipa::ToSchema for PlanName {}

/// An endpoint a plan may or may not allow. The string form is what the `plans` table's
/// `allowed_endpoints` column lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    CreateReferralLink,
    ReferralLinkMetadata,
    CreateAttribution,
    Events,
    CaptureEvent,
    Analytics,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::CreateReferralLink => "referral_links.create",
            Endpoint::ReferralLinkMetadata => "referral_links.metadata",
            Endpoint::CreateAttribution => "attributions.create",
            Endpoint::Events => "events.create",
            Endpoint::CaptureEvent => "capture_event.create",
            Endpoint::Analytics => "analytics.read",
        }
    }

    /// The endpoint a plan's `allowed_endpoints` entry names, if it names one.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Endpoint::CreateReferralLink,
            Endpoint::ReferralLinkMetadata,
            Endpoint::CreateAttribution,
            Endpoint::Events,
            Endpoint::CaptureEvent,
            Endpoint::Analytics,
        ]
        .into_iter()
        .find(|endpoint| endpoint.as_str() == raw)
    }
}
