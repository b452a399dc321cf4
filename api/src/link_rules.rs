//! A link's routing (spec, "Links at scale"): redirect rules and the click cap.
//!
//! - **Rules**: an ordered list of `{country?, device?, os?, language?} → url`. Every field a
//!   rule gives must match the click; the first rule that matches wins, before the platform
//!   URLs and the destination. They are matched in the redirect against the facts the click's
//!   enrichment already worked out (country, device, OS family) and the request's
//!   `Accept-Language`: no database round trip, the rules travel with the cached link.
//! - **`maxClicks`**: after that many counted clicks (people, not repeats) the link answers
//!   as an expired one. Counted in Postgres in the click's background task
//!   ([`crate::links::count_capped_click`]); the click that reaches the cap marks the link
//!   exhausted, and that change reaches every instance's link cache through the change
//!   notifications, so the redirect checks a cached flag, never the database.

use linktrace_domain::{os_family, ClickFacts, Device, WebUrl};
use serde::{Deserialize, Deserializer, Serialize};

/// The most rules one link may have.
pub const MAX_RULES: usize = 20;

/// One rule as stored and shown: the conditions it has, and where it sends a match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectRule {
    /// ISO 3166-1 alpha-2 (upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// `mobile`, `tablet`, `desktop` or `bot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// An OS family as analytics names it (`iOS`, `iPadOS`, `Android`, `Windows`, `macOS`,
    /// `Linux`, `ChromeOS`…); matched case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// A primary language tag (`de`), matched against every language `Accept-Language`
    /// lists with a weight above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub url: String,
}

/// What a rule is matched against.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleFacts<'a> {
    pub country: &'a str,
    pub device: Option<Device>,
    pub os: &'a str,
    /// The request's `Accept-Language`, as sent.
    pub accept_language: Option<&'a str>,
}

impl<'a> RuleFacts<'a> {
    pub fn of(facts: Option<&'a ClickFacts>, accept_language: Option<&'a str>) -> Self {
        match facts {
            Some(facts) => RuleFacts {
                country: &facts.country,
                device: facts.device,
                os: &facts.os,
                accept_language,
            },
            None => RuleFacts {
                accept_language,
                ..RuleFacts::default()
            },
        }
    }
}

impl RedirectRule {
    pub fn matches(&self, click: &RuleFacts<'_>) -> bool {
        let country = self
            .country
            .as_deref()
            .is_none_or(|country| country.eq_ignore_ascii_case(click.country));
        let device = self
            .device
            .as_deref()
            .is_none_or(|device| click.device.is_some_and(|d| d.as_str() == device));
        let os = self
            .os
            .as_deref()
            .is_none_or(|os| !click.os.is_empty() && os.eq_ignore_ascii_case(click.os));
        let language = self.language.as_deref().is_none_or(|language| {
            accepted_languages(click.accept_language.unwrap_or_default())
                .any(|accepted| accepted.eq_ignore_ascii_case(language))
        });
        country && device && os && language
    }
}

/// The URL of the first rule the click matches.
pub fn first_match<'r>(rules: &'r [RedirectRule], click: &RuleFacts<'_>) -> Option<&'r str> {
    rules
        .iter()
        .find(|rule| rule.matches(click))
        .map(|rule| rule.url.as_str())
}

/// The primary subtags of the languages an `Accept-Language` header accepts (weight above 0;
/// `*` is no language).
fn accepted_languages(header: &str) -> impl Iterator<Item = &str> {
    header.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let range = parts.next()?.trim();
        let refused = parts.any(|param| {
            param
                .trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        let primary = range.split('-').next()?.trim();
        (!refused && !primary.is_empty() && primary != "*").then_some(primary)
    })
}

/// One rule in a request body, each field checked and normalised.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleBody {
    country: Option<String>,
    device: Option<String>,
    os: Option<String>,
    language: Option<String>,
    url: String,
}

/// `rules` in a request body: at most [`MAX_RULES`], each with at least one condition.
#[derive(Debug, Clone, Default)]
pub struct RulesParam(pub Vec<RedirectRule>);

impl<'de> Deserialize<'de> for RulesParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Each item is read on its own so that every error names its rule.
        let bodies = Vec::<serde_json::Value>::deserialize(deserializer)?;
        if bodies.len() > MAX_RULES {
            return Err(D::Error::custom(format!(
                "may hold at most {MAX_RULES} rules"
            )));
        }
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                serde_json::from_value::<RuleBody>(body)
                    .map_err(|error| error.to_string())
                    .and_then(rule)
                    .map_err(|message| D::Error::custom(format!("[{i}]: {message}")))
            })
            .collect::<Result<_, _>>()
            .map(RulesParam)
    }
}

fn rule(body: RuleBody) -> Result<RedirectRule, String> {
    let url = WebUrl::parse(&body.url).map_err(|error| format!("url {error}"))?;
    let country = body
        .country
        .map(|country| {
            let country = country.trim().to_ascii_uppercase();
            if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(country)
            } else {
                Err("country must be an ISO 3166-1 alpha-2 code (e.g. DE)".to_owned())
            }
        })
        .transpose()?;
    let device = body
        .device
        .map(|device| {
            let device = device.trim().to_ascii_lowercase();
            if [Device::Mobile, Device::Tablet, Device::Desktop, Device::Bot]
                .iter()
                .any(|d| d.as_str() == device)
            {
                Ok(device)
            } else {
                Err("device must be mobile, tablet, desktop or bot".to_owned())
            }
        })
        .transpose()?;
    let os = body
        .os
        .map(|os| {
            let os = os.trim();
            if (1..=32).contains(&os.chars().count()) && !os.chars().any(char::is_control) {
                // `iPhone` means its family, as analytics' `os` filter takes it.
                Ok(os_family(os).to_owned())
            } else {
                Err("os must be an OS family of 1-32 characters (e.g. iOS)".to_owned())
            }
        })
        .transpose()?;
    let language = body
        .language
        .map(|language| {
            let language = language.trim().to_ascii_lowercase();
            if (2..=8).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase())
            {
                Ok(language)
            } else {
                Err("language must be a primary language tag of 2-8 letters (e.g. de)".to_owned())
            }
        })
        .transpose()?;
    if country.is_none() && device.is_none() && os.is_none() && language.is_none() {
        return Err("a rule needs at least one of country, device, os and language".to_owned());
    }
    Ok(RedirectRule {
        country,
        device,
        os,
        language,
        url: url.into_string(),
    })
}

impl utoipa::PartialSchema for RulesParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .property("country", text("ISO 3166-1 alpha-2"))
                    .property("device", text("mobile, tablet, desktop or bot"))
                    .property("os", text("an OS family: iOS, Android, Windows…"))
                    .property("language", text("a primary language tag, e.g. de"))
                    .property("url", text("an absolute http(s) URL the click goes to"))
                    .required("url"),
            )
            .max_items(Some(MAX_RULES))
            .into()
    }
}
impl utoipa::ToSchema for RulesParam {}

/// `maxClicks`: 1 to 10^12 counted clicks.
#[derive(Debug, Clone, Copy)]
pub struct MaxClicks(pub i64);

impl<'de> Deserialize<'de> for MaxClicks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("must be a whole number from 1 to 10^12"))?;
        if (1..=1_000_000_000_000).contains(&n) {
            Ok(MaxClicks(n as i64))
        } else {
            Err(serde::de::Error::custom(
                "must be a whole number from 1 to 10^12",
            ))
        }
    }
}

impl utoipa::PartialSchema for MaxClicks {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1_000_000_000_000i64))
            .into()
    }
}
impl utoipa::ToSchema for MaxClicks {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> RedirectRule {
        serde_json::from_value::<RulesParam>(serde_json::json!([json]))
            .unwrap()
            .0
            .remove(0)
    }

    #[test]
    fn every_given_field_must_match() {
        let german_iphones = rule(serde_json::json!({
            "country": "de", "os": "iPhone", "url": "https://a.example/de-ios"
        }));
        assert_eq!(german_iphones.country.as_deref(), Some("DE"));
        assert_eq!(german_iphones.os.as_deref(), Some("iOS"));
        let click = RuleFacts {
            country: "DE",
            device: Some(Device::Mobile),
            os: "iOS",
            accept_language: None,
        };
        assert!(german_iphones.matches(&click));
        assert!(!german_iphones.matches(&RuleFacts {
            country: "AT",
            ..click
        }));
        assert!(!german_iphones.matches(&RuleFacts { os: "", ..click }));
    }

    #[test]
    fn languages_match_any_accepted_primary_tag() {
        let german = rule(serde_json::json!({"language": "DE", "url": "https://a.example/de"}));
        let with = |header| RuleFacts {
            accept_language: Some(header),
            ..RuleFacts::default()
        };
        assert!(german.matches(&with("en-US,en;q=0.9,de-CH;q=0.5")));
        assert!(german.matches(&with("de")));
        assert!(!german.matches(&with("en-US,de;q=0")));
        assert!(!german.matches(&with("*")));
        assert!(!german.matches(&RuleFacts::default()));
    }

    #[test]
    fn the_first_match_wins() {
        let rules = serde_json::from_value::<RulesParam>(serde_json::json!([
            {"device": "tablet", "url": "https://a.example/tablet"},
            {"country": "JP", "url": "https://a.example/jp"},
            {"country": "JP", "device": "mobile", "url": "https://a.example/never"}
        ]))
        .unwrap()
        .0;
        let japanese_phone = RuleFacts {
            country: "JP",
            device: Some(Device::Mobile),
            ..RuleFacts::default()
        };
        assert_eq!(
            first_match(&rules, &japanese_phone),
            Some("https://a.example/jp")
        );
        assert_eq!(first_match(&rules, &RuleFacts::default()), None);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        for (rules, message) in [
            (
                serde_json::json!([{"url": "https://a.example"}]),
                "[0]: a rule needs",
            ),
            (
                serde_json::json!([{"country": "DE", "url": "https://a.example"}, {"country": "Germany", "url": "https://a.example"}]),
                "[1]: country",
            ),
            (
                serde_json::json!([{"device": "phone", "url": "https://a.example"}]),
                "[0]: device",
            ),
            (
                serde_json::json!([{"language": "de-DE", "url": "https://a.example"}]),
                "[0]: language",
            ),
            (
                serde_json::json!([{"country": "DE", "url": "javascript:alert(1)"}]),
                "[0]: url must be an absolute",
            ),
            (
                serde_json::json!([{"country": "DE", "url": "https://a.example"}, {"country": "DE", "city": "Berlin", "url": "https://a.example"}]),
                "[1]: unknown field `city`",
            ),
            (
                serde_json::json!([{"country": "DE"}]),
                "[0]: missing field `url`",
            ),
        ] {
            let error = serde_json::from_value::<RulesParam>(rules)
                .unwrap_err()
                .to_string();
            assert!(error.contains(message), "{error}");
        }
        let many: Vec<_> = (0..21)
            .map(|_| serde_json::json!({"country": "DE", "url": "https://a.example"}))
            .collect();
        assert!(serde_json::from_value::<RulesParam>(serde_json::json!(many)).is_err());
    }
}
