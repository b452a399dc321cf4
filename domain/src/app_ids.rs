//! The identifiers of a customer's apps, as Apple and Google define them: what the link host's
//! `apple-app-site-association` and `assetlinks.json` are built from.

use crate::ParseError;

/// Defines a text newtype: `parse` (with `rule`), `as_str`, serde, and its OpenAPI schema.
macro_rules! app_id {
    ($(#[$doc:meta])* $name:ident, $pattern:literal, $description:literal, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                let rule: fn(&str) -> Option<String> = $rule;
                rule(raw.trim())
                    .map(Self)
                    .ok_or_else(|| ParseError::new(concat!("must be ", $description)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        crate::text_value!($name);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::text(Some($pattern), Some(1), Some(255), $description)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

fn segments(raw: &str, min: usize, first_letter: bool, allowed: fn(char) -> bool) -> bool {
    let parts: Vec<&str> = raw.split('.').collect();
    raw.len() <= 255
        && parts.len() >= min
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.chars().all(allowed)
                && (!first_letter || part.starts_with(|c: char| c.is_ascii_alphabetic()))
        })
}

app_id!(
    /// An Apple Developer Team ID: ten upper-case letters and digits.
    AppleTeamId,
    "^[A-Z0-9]{10}$",
    "an Apple Team ID: 10 upper-case letters or digits",
    |raw| (raw.len() == 10 && raw.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        .then(|| raw.to_owned())
);

app_id!(
    /// An iOS bundle identifier (reverse DNS: `com.example.app`).
    BundleId,
    "^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$",
    "a bundle identifier in reverse-DNS form, e.g. com.example.app",
    |raw| segments(raw, 2, false, |c| c.is_ascii_alphanumeric() || c == '-').then(|| raw.to_owned())
);

app_id!(
    /// An Android application id (`com.example.app`: segments start with a letter).
    AndroidPackage,
    "^[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+$",
    "an Android package name, e.g. com.example.app",
    |raw| segments(raw, 2, true, |c| c.is_ascii_alphanumeric() || c == '_').then(|| raw.to_owned())
);

app_id!(
    /// The SHA-256 fingerprint of an app's signing certificate: 32 hex bytes, colon-separated
    /// (upper case, as `keytool` prints it).
    CertFingerprint,
    "^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$",
    "a SHA-256 certificate fingerprint: 32 hex bytes separated by colons",
    |raw| {
        let bytes: Vec<&str> = raw.split(':').collect();
        (bytes.len() == 32 && bytes.iter().all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit())))
            .then(|| raw.to_ascii_uppercase())
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_ids() {
        assert_eq!(
            AppleTeamId::parse("ABCDE12345").unwrap().as_str(),
            "ABCDE12345"
        );
        assert!(AppleTeamId::parse("abcde12345").is_err());
        assert!(AppleTeamId::parse("ABCDE1234").is_err());
        assert!(BundleId::parse("com.example.my-app").is_ok());
        assert!(BundleId::parse("example").is_err());
        assert!(BundleId::parse("com..example").is_err());
    }

    #[test]
    fn android_ids() {
        assert!(AndroidPackage::parse("com.example.app_2").is_ok());
        assert!(AndroidPackage::parse("com.2example").is_err());
        assert!(AndroidPackage::parse("app").is_err());
        let fingerprint = ["ab"; 32].join(":");
        assert_eq!(
            CertFingerprint::parse(&fingerprint).unwrap().as_str(),
            ["AB"; 32].join(":")
        );
        assert!(CertFingerprint::parse(&["ab"; 31].join(":")).is_err());
        assert!(CertFingerprint::parse(&["zz"; 32].join(":")).is_err());
    }
}
