//! A link domain an account serves its links on (spec, "Attribution to the app"): a DNS host
//! name of at least two labels, kept in lower case without a trailing dot.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    pub const MAX_LEN: usize = 253;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').collect();
        let label_ok = |label: &&str| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let top_level_ok = labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()));
        if name.len() <= Self::MAX_LEN
            && labels.len() >= 2
            && labels.iter().all(label_ok)
            && top_level_ok
        {
            Ok(Self(name))
        } else {
            Err(ParseError::new(
                "must be a host name such as go.example.com (letters, digits and hyphens, at least two labels)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DNS name whose TXT record proves the domain's owner: `_linktrace.<domain>`.
    pub fn verification_name(&self) -> String {
        format!("_linktrace.{}", self.0)
    }

    /// The host a request names (its `Host` header, port dropped), as a domain, if it is one.
    pub fn from_host(host: &str) -> Option<Self> {
        let host = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        Self::parse(host).ok()
    }
}

crate::text_value!(DomainName);

impl utoipa::PartialSchema for DomainName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::text(
            Some("^[A-Za-z0-9.-]+$"),
            Some(3),
            Some(Self::MAX_LEN),
            "a host name such as go.example.com",
        )
    }
}

impl utoipa::ToSchema for DomainName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_kept_lower_case_and_others_refused() {
        assert_eq!(
            DomainName::parse("Go.Acme.COM.").unwrap().as_str(),
            "go.acme.com"
        );
        for bad in [
            "acme",
            "",
            "-go.acme.com",
            "go..acme.com",
            "go_x.acme.com",
            "203.0.113.9",
            "a.b/c",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DomainName::from_host("go.acme.com:8080").unwrap().as_str(),
            "go.acme.com"
        );
        assert!(DomainName::from_host("127.0.0.1:8080").is_none());
        assert!(DomainName::from_host("localhost").is_none());
    }
}
