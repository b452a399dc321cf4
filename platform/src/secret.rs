//! Secrets read from the environment (the admin token, the ClickHouse password, the Postgres
//! URL, which may hold one): a `secrecy` string, so no `Debug` of a configuration and no log
//! line can show it, and its memory is zeroed when dropped. Read it with [`Secret::expose`].

use std::convert::Infallible;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// A secret configuration value. `Debug` prints `[REDACTED]`.
#[derive(Debug)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that uses it (a comparison, a connection).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose())
    }
}

/// For `envconfig`, which parses every field with `FromStr`.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(value: &str) -> Result<Self, Infallible> {
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret: Secret = "lt_admin_hunter2".parse().unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.clone().expose(), "lt_admin_hunter2");
    }
}
