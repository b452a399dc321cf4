use std::fmt;

use crate::ParseError;

/// Where a link sends a visitor (or where its preview image lives): an absolute http(s)
/// URL of at most 2,048 characters, with no control character (NUL, CR, LF, tab…), space or
/// backslash. Those are refused, not cleaned: a URL parser drops tabs and newlines and
/// reads a backslash as `/`, so such a URL means another host to a browser than to a reader
/// of the raw text, and a raw CR or LF cannot go in a `Location` header at all. Written
/// percent-encoded (`%5C`, `%0A`) they are fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl(String);

impl WebUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() > Self::MAX_LEN {
            return Err(ParseError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if raw.chars().any(|c| c.is_control() || c == ' ' || c == '\\') {
            return Err(ParseError::new(
                "must not contain control characters, spaces or backslashes (percent-encode them)",
            ));
        }
        let absolute = url::Url::parse(raw)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
        if !absolute {
            return Err(ParseError::new("must be an absolute http or https URL"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::text_value!(WebUrl);

impl utoipa::PartialSchema for WebUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // Every string the pattern matches is accepted (a path, query and fragment too);
        // the server also accepts URLs the pattern is too plain to describe (IDN hosts).
        crate::schema::text(
            Some(r"^https?://[a-z0-9]+([.-][a-z0-9]+)*(:[1-9][0-9]{1,3})?([/?#][!-~]*)?$"),
            None,
            Some(Self::MAX_LEN),
            "an absolute http or https URL",
        )
    }
}

impl utoipa::ToSchema for WebUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_absolute_web_urls_with_query_and_fragment() {
        for ok in [
            "https://example.com",
            "http://a.b:8080/x?y=1&z=%20#frag",
            "https://example.com/?utm_source=x",
        ] {
            assert!(WebUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_other_schemes_relative_and_long() {
        for bad in [
            "ftp://example.com",
            "/relative",
            "example.com",
            "mailto:a@b.c",
            "http://",
            "https://example.com/a\0b",
            "https://example.com/a\r\nSet-Cookie: x=1",
            "https://example.com/\tx",
            "https:/\\evil.example",
            "https://evil.example\\@a.example",
            "https://example.com/a b",
            "https://example.com/\u{85}",
        ] {
            assert!(WebUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(
            WebUrl::parse(&long).unwrap_err().0,
            "must be at most 2048 characters"
        );
    }

    #[test]
    fn reads_itself_from_json_naming_the_rule() {
        let parsed: Result<WebUrl, _> = serde_json::from_str("\"ftp://x\"");
        assert!(parsed
            .unwrap_err()
            .to_string()
            .starts_with("must be an absolute http or https URL"));
    }
}
