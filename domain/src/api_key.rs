use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Environment, ParseError};

const LIVE_PREFIX: &str = "lt_live_";
const TEST_PREFIX: &str = "lt_test_";
const SECRET_HEX_LEN: usize = 40;

/// A secret API key as the customer holds it: `lt_live_…` or `lt_test_…` followed by 40
/// lowercase hex characters. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    raw: String,
    environment: Environment,
}

/// What we store and look keys up by: the SHA-256 of the whole key, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKey {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let (environment, secret) = if let Some(rest) = raw.strip_prefix(LIVE_PREFIX) {
            (Environment::Live, rest)
        } else if let Some(rest) = raw.strip_prefix(TEST_PREFIX) {
            (Environment::Test, rest)
        } else {
            return Err(ParseError::new("is not a LinkTrace API key"));
        };
        let well_formed = secret.len() == SECRET_HEX_LEN
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(ParseError::new("is not a LinkTrace API key"));
        }
        Ok(Self {
            raw: raw.to_owned(),
            environment,
        })
    }

    pub fn generate(environment: Environment) -> Self {
        let mut secret = [0u8; SECRET_HEX_LEN / 2];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let prefix = match environment {
            Environment::Live => LIVE_PREFIX,
            Environment::Test => TEST_PREFIX,
        };
        Self {
            raw: format!("{prefix}{}", hex::encode(secret)),
            environment,
        }
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.raw.as_bytes())))
    }

    /// A short, non-secret form for logs and listings (`lt_live_ab12…`).
    pub fn display_prefix(&self) -> String {
        format!("{}…", &self.raw[..LIVE_PREFIX.len() + 4])
    }

    /// The secret itself: only to be shown once, to the account owner, on creation.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.display_prefix())
    }
}

impl ApiKeyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_with_their_environment() {
        for env in [Environment::Live, Environment::Test] {
            let key = ApiKey::generate(env);
            let parsed = ApiKey::parse(key.expose_secret()).unwrap();
            assert_eq!(parsed.environment(), env);
            assert_eq!(parsed.hash(), key.hash());
        }
    }

    #[test]
    fn rejects_foreign_and_malformed_keys() {
        assert!(ApiKey::parse("").is_err());
        assert!(ApiKey::parse("sk_live_0123").is_err());
        assert!(ApiKey::parse(&format!("lt_live_{}", "g".repeat(40))).is_err());
        assert!(ApiKey::parse(&format!("lt_live_{}", "a".repeat(39))).is_err());
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = ApiKey::generate(Environment::Live);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.expose_secret()[12..]));
    }
}
