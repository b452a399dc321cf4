//! What we learn about a click: where it came from, on what, and whether a person made it.
//! Travels inside the event record's client facts and becomes columns of `events`.

use serde::{Deserialize, Serialize};

/// The five UTM parameters of a campaign URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Utm {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub medium: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub campaign: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub term: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

impl Utm {
    /// The query parameter names, in the order of [`Utm::values`].
    pub const PARAMETERS: [&'static str; 5] = [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    ];

    pub fn values(&self) -> [&str; 5] {
        [
            &self.source,
            &self.medium,
            &self.campaign,
            &self.term,
            &self.content,
        ]
    }

    /// The value for a parameter name (`utm_source` …), if it is one of the five.
    pub fn slot(&mut self, parameter: &str) -> Option<&mut String> {
        match parameter {
            "utm_source" => Some(&mut self.source),
            "utm_medium" => Some(&mut self.medium),
            "utm_campaign" => Some(&mut self.campaign),
            "utm_term" => Some(&mut self.term),
            "utm_content" => Some(&mut self.content),
            _ => None,
        }
    }

    /// These values, each one `defaults` has filled in where this one is empty.
    pub fn or(mut self, defaults: &Utm) -> Utm {
        for (name, default) in Self::PARAMETERS.iter().zip(defaults.values()) {
            let slot = self.slot(name).expect("one of the five");
            if slot.is_empty() {
                *slot = default.to_owned();
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|v| v.is_empty())
    }
}

/// The kind of device a click came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
    Bot,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
            Device::Bot => "bot",
        }
    }
}

/// The facts stored with every click. Empty strings are "unknown".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClickFacts {
    /// ISO 3166-1 alpha-2, upper case.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub country: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub browser: String,
    /// The host of the page the visitor came from (`Referer`), lower case.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub referrer_host: String,
    #[serde(default, skip_serializing_if = "Utm::is_empty")]
    pub utm: Utm,
    /// A crawler, a preview fetcher, a monitor, a `HEAD` or a request with no user agent.
    #[serde(default)]
    pub bot: bool,
    /// The same visitor clicked the same link less than an hour before (a click that was
    /// counted): stored, but counted once by default (`includeRepeats=true` counts it) and
    /// sent to no webhook.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// A salted hash of IP, user agent and day: counts unique visitors without raw IPs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub visitor: String,
}

/// The operating system's family, as analytics groups and filters clicks: `iOS`, `iPadOS`,
/// `Android`, `Windows`, `Windows Phone`, `macOS`, `Linux`, `ChromeOS` (others as the
/// user-agent parser names them). `os` is the parser's (woothee's) name, which says `iPhone`
/// or `Windows 10`; clicks stored before families were kept it, and [`OS_FAMILY_SQL`] reads
/// them the same way.
pub fn os_family(os: &str) -> &str {
    match os {
        "iPhone" | "iPod" => "iOS",
        "iPad" => "iPadOS",
        "Mac OSX" | "Mac OS Classic" => "macOS",
        other if other.starts_with("Windows Phone") => "Windows Phone",
        other if other.starts_with("Windows") => "Windows",
        other => other,
    }
}

/// [`os_family`] in ClickHouse SQL, over a column `os` (runs on 18.16 and current releases).
pub const OS_FAMILY_SQL: &str = "multiIf(os IN ('iPhone', 'iPod'), 'iOS', os = 'iPad', 'iPadOS', \
     os IN ('Mac OSX', 'Mac OS Classic'), 'macOS', os LIKE 'Windows Phone%', 'Windows Phone', \
     os LIKE 'Windows%', 'Windows', os)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_families() {
        for (os, family) in [
            ("iPhone", "iOS"),
            ("iPod", "iOS"),
            ("iPad", "iPadOS"),
            ("Android", "Android"),
            ("Windows 10", "Windows"),
            ("Windows 7", "Windows"),
            ("Windows Phone OS", "Windows Phone"),
            ("Mac OSX", "macOS"),
            ("Linux", "Linux"),
            ("ChromeOS", "ChromeOS"),
            ("iOS", "iOS"),
            ("", ""),
        ] {
            assert_eq!(os_family(os), family, "{os}");
        }
    }

    #[test]
    fn defaults_fill_only_what_the_click_left_empty() {
        let click = Utm {
            source: "newsletter".into(),
            ..Utm::default()
        };
        let defaults = Utm {
            source: "twitter".into(),
            campaign: "launch".into(),
            ..Utm::default()
        };
        let merged = click.or(&defaults);
        assert_eq!(merged.source, "newsletter");
        assert_eq!(merged.campaign, "launch");
        assert_eq!(merged.medium, "");
    }

    #[test]
    fn empty_facts_serialise_to_almost_nothing_and_read_back() {
        let facts = ClickFacts::default();
        let json = serde_json::to_string(&facts).unwrap();
        assert_eq!(json, r#"{"bot":false}"#);
        assert_eq!(serde_json::from_str::<ClickFacts>("{}").unwrap(), facts);
        let full = ClickFacts {
            country: "DE".into(),
            device: Some(Device::Tablet),
            utm: Utm {
                term: "shoes".into(),
                ..Utm::default()
            },
            bot: true,
            ..ClickFacts::default()
        };
        let back: ClickFacts =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }
}
