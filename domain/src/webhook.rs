//! What a webhook subscribes to, and its signing secret.

use std::fmt;

use rand::RngCore;

use crate::{EventName, ParseError};

/// The event types a webhook receives: `*` (every stored event) or event names — the
/// pipeline's own (`click`, `install`) as well as the customer's (`purchase`). 1-20
/// entries; repeats collapse, order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<String>);

impl EventTypes {
    pub const MAX: usize = 20;
    pub const EVERY: &'static str = "*";

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ParseError> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(ParseError::new(format!(
                "must list 1-{} event types",
                Self::MAX
            )));
        }
        let mut types: Vec<String> = Vec::with_capacity(raw.len());
        for entry in raw {
            let entry = entry.as_ref();
            let valid = entry == Self::EVERY
                || (entry.len() <= EventName::MAX_LEN && EventName::has_name_shape(entry));
            if !valid {
                return Err(ParseError::new(format!(
                    "'{entry}' is not an event type: \"*\" or a name matching ^[a-z][a-z0-9_]*$"
                )));
            }
            if !types.iter().any(|t| t == entry) {
                types.push(entry.to_owned());
            }
        }
        Ok(Self(types))
    }

    /// Whether an event named `name` is delivered.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|t| t == Self::EVERY || t == name)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl serde::Serialize for EventTypes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for EventTypes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for EventTypes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(crate::schema::text(
                Some(r"^(\*|[a-z][a-z0-9_]*)$"),
                Some(1),
                Some(128),
                "\"*\" (every event) or an event name",
            ))
            .min_items(Some(1))
            .max_items(Some(Self::MAX))
            .description(Some("The event types delivered: \"*\" or event names"))
            .into()
    }
}

impl utoipa::ToSchema for EventTypes {}

/// The key a webhook's deliveries are signed with: `whsec_` and 64 hex digits. Shown to the
/// customer once, when the webhook is created.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!("{}{}", Self::PREFIX, hex::encode(bytes)))
    }

    /// A secret as stored.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_star_or_names_and_collapse_repeats() {
        let types = EventTypes::parse(&["install", "purchase", "install"]).unwrap();
        assert_eq!(types.as_slice(), ["install", "purchase"]);
        assert!(types.matches("install"));
        assert!(!types.matches("click"));
        assert!(EventTypes::parse(&["*"]).unwrap().matches("click"));
        for bad in [vec![], vec!["Install"], vec!["a b"], vec![""], vec!["**"]] {
            assert!(EventTypes::parse(&bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("e{i}")).collect();
        assert!(EventTypes::parse(&many).is_err());
    }

    #[test]
    fn secrets_are_random_and_not_printed() {
        let one = WebhookSecret::generate();
        assert_ne!(one, WebhookSecret::generate());
        assert!(one.expose_secret().starts_with("whsec_"));
        assert_eq!(one.expose_secret().len(), 6 + 64);
        assert!(!format!("{one:?}").contains(&one.expose_secret()[6..]));
    }
}
