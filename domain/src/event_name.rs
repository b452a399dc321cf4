use std::fmt;

use crate::ParseError;

/// A post-install event name: lowercased, `^[a-z][a-z0-9_]*$`, at most 128 characters,
/// and not one of the names the pipeline records itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventName(String);

impl EventName {
    pub const MAX_LEN: usize = 128;
    /// Names LinkTrace records on its own; a customer may not send them.
    pub const RESERVED: [&'static str; 4] = ["click", "install", "impression", "open"];

    /// Parses a name a customer sent: normalised to lowercase first, then checked.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::parse_owned(raw.to_owned())
    }

    /// [`parse`](Self::parse), lowercasing `raw` in place when it is ASCII rather than
    /// copying it.
    pub fn parse_owned(mut raw: String) -> Result<Self, ParseError> {
        let name = if raw.is_ascii() {
            raw.make_ascii_lowercase();
            raw
        } else {
            raw.to_lowercase()
        };
        if name.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if !Self::has_name_shape(&name) {
            return Err(ParseError::new(
                "must match ^[a-z][a-z0-9_]*$ after lowercasing",
            ));
        }
        if Self::RESERVED.contains(&name.as_str()) {
            return Err(ParseError::new(format!("'{name}' is reserved")));
        }
        Ok(Self(name))
    }

    /// `^[a-z][a-z0-9_]*$`: the shape of every event name, the pipeline's own included.
    pub fn has_name_shape(name: &str) -> bool {
        let mut bytes = name.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// The pipeline's own events (`click`, `install`): not open to customers.
    pub fn system(name: SystemEvent) -> Self {
        Self(name.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

// A name read from a request is a name a customer sent: `parse`'s rule, reserved names
// refused.
crate::text_value!(EventName, EventName::parse_owned);

impl utoipa::PartialSchema for EventName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::text(
            Some("^[A-Za-z][A-Za-z0-9_]*$"),
            Some(1),
            Some(Self::MAX_LEN),
            "lowercased, then ^[a-z][a-z0-9_]*$; not click, install, impression or open",
        )
    }
}

impl utoipa::ToSchema for EventName {}

/// Events LinkTrace itself records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEvent {
    Click,
    Install,
    /// An installed app opened through a link (re-engagement), `POST /api/v1/opens`.
    Open,
}

impl SystemEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemEvent::Click => "click",
            SystemEvent::Install => "install",
            SystemEvent::Open => "open",
        }
    }

    /// The system event stored under this name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        [SystemEvent::Click, SystemEvent::Install, SystemEvent::Open]
            .into_iter()
            .find(|event| event.as_str() == name)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_to_lowercase() {
        assert_eq!(
            EventName::parse("Purchase_Completed").unwrap().as_str(),
            "purchase_completed"
        );
    }

    #[test]
    fn rejects_reserved_names_in_any_case() {
        for name in ["click", "INSTALL", "Impression", "open"] {
            assert!(EventName::parse(name).is_err(), "{name}");
        }
        assert!(EventName::parse("opened").is_ok());
    }

    #[test]
    fn enforces_pattern_and_length() {
        assert!(EventName::parse("1purchase").is_err());
        assert!(EventName::parse("_purchase").is_err());
        assert!(EventName::parse("pur-chase").is_err());
        assert!(EventName::parse("").is_err());
        assert!(EventName::parse(&"a".repeat(128)).is_ok());
        assert!(EventName::parse(&"a".repeat(129)).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_output_obeys_rule(s in "\\PC{0,140}") {
            if let Ok(name) = EventName::parse(&s) {
                let n = name.as_str();
                prop_assert!(n.len() <= 128);
                prop_assert!(n.as_bytes()[0].is_ascii_lowercase());
                prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                prop_assert!(!EventName::RESERVED.contains(&n));
            }
        }
    }
}
