//! Device, OS, browser and bot status from a user agent: `woothee` parses, `isbot`'s
//! maintained list (a port of the npm `isbot` patterns) flags crawlers and monitors.

use linktrace_domain::Device;

/// Link-preview fetchers of chat and social apps: they get the preview page, not the
/// 302. Lower-case substrings of their user agents (all of them are bots as well).
const PREVIEW_FETCHERS: &[&str] = &[
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "twitterbot",
    "slackbot",
    "slack-imgproxy",
    "linkedinbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "pinterest",
    "skypeuripreview",
    "redditbot",
    "vkshare",
    "embedly",
    "iframely",
    "mastodon",
    "bluesky cardyb",
    "google-pagerenderer",
    "snapchat",
    "viber",
    "microsoft teams",
];

/// Which of a link's URLs a device follows: its app store's, or the web destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Platform {
    Ios,
    Android,
    #[default]
    Web,
}

impl Platform {
    /// The platform of an OS family (`linktrace_domain::os_family`).
    pub fn of_os_family(family: &str) -> Self {
        match family {
            "iOS" | "iPadOS" => Platform::Ios,
            "Android" => Platform::Android,
            _ => Platform::Web,
        }
    }

    /// As stored with the click.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
        }
    }
}

/// What a user agent says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFacts {
    pub device: Option<Device>,
    /// The OS family (iOS, iPadOS, Android, Windows, macOS…).
    pub os: String,
    /// Follows from `os`: one parse decides both.
    pub platform: Platform,
    pub browser: String,
    pub bot: bool,
    /// A link-preview fetcher (always also a bot).
    pub preview: bool,
}

pub struct UserAgents {
    parser: woothee::parser::Parser,
    bots: isbot::Bots,
    /// Answers by user agent: real traffic repeats a few hundred of them, and parsing one
    /// (woothee, then isbot's patterns) cost ~8 µs of a click's CPU in the redirect
    /// (`bench/redirect.sh`'s profile), a look-up well under one.
    known: moka::sync::Cache<String, AgentFacts>,
}

/// The most user agents remembered, and the longest one worth remembering.
const KNOWN_AGENTS: u64 = 10_000;
const LONGEST_REMEMBERED: usize = 512;

impl Default for UserAgents {
    fn default() -> Self {
        Self::new()
    }
}

impl UserAgents {
    pub fn new() -> Self {
        Self {
            parser: woothee::parser::Parser::new(),
            bots: isbot::Bots::default(),
            known: moka::sync::Cache::new(KNOWN_AGENTS),
        }
    }

    pub fn classify(&self, user_agent: &str) -> AgentFacts {
        let user_agent = user_agent.trim();
        if user_agent.len() > LONGEST_REMEMBERED {
            return self.parse(user_agent);
        }
        if let Some(known) = self.known.get(user_agent) {
            return known;
        }
        let facts = self.parse(user_agent);
        self.known.insert(user_agent.to_owned(), facts.clone());
        facts
    }

    /// What the parsers make of a user agent (no memory).
    pub fn parse(&self, user_agent: &str) -> AgentFacts {
        if user_agent.is_empty() {
            return AgentFacts {
                device: Some(Device::Bot),
                bot: true,
                ..AgentFacts::default()
            };
        }
        let lower = user_agent.to_ascii_lowercase();
        let preview = PREVIEW_FETCHERS.iter().any(|token| lower.contains(token));
        let parsed = self.parser.parse(user_agent);
        let known = |value: &str| {
            if value == woothee::woothee::VALUE_UNKNOWN {
                String::new()
            } else {
                value.to_owned()
            }
        };
        let (category, os, browser) = parsed
            .map(|p| (p.category, known(p.os), known(p.name)))
            .unwrap_or_default();
        let bot = preview || category == "crawler" || self.bots.is_bot(user_agent);
        let device = if bot {
            Some(Device::Bot)
        } else {
            match category {
                "pc" => Some(Device::Desktop),
                "smartphone" | "mobilephone" if is_tablet(&os, &lower) => Some(Device::Tablet),
                "smartphone" | "mobilephone" => Some(Device::Mobile),
                _ => None,
            }
        };
        // The family (iOS, Windows…), what people group and filter by.
        let os = linktrace_domain::os_family(&os).to_owned();
        AgentFacts {
            device,
            platform: Platform::of_os_family(&os),
            os,
            browser,
            bot,
            preview,
        }
    }
}

/// iPads, and Android devices without "Mobile" in their user agent (Google's convention
/// for tablets).
fn is_tablet(os: &str, lower_agent: &str) -> bool {
    os == "iPad" || (os == "Android" && !lower_agent.contains("mobile"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_follows_the_os_family() {
        let agents = UserAgents::new();
        for (agent, platform) in [
            (IPHONE, Platform::Ios),
            (IPAD, Platform::Ios),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                Platform::Android,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                Platform::Web,
            ),
            ("", Platform::Web),
        ] {
            assert_eq!(agents.parse(agent).platform, platform, "{agent}");
        }
    }

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1";
    const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
    const GALAXY_TAB: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const WINDOWS_FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";

    #[test]
    fn people() {
        let agents = UserAgents::new();
        let iphone = agents.classify(IPHONE);
        assert_eq!(iphone.device, Some(Device::Mobile));
        assert_eq!(iphone.os, "iOS");
        assert_eq!(agents.classify(IPAD).os, "iPadOS");
        assert_eq!(iphone.browser, "Safari");
        assert!(!iphone.bot);
        assert_eq!(agents.classify(IPAD).device, Some(Device::Tablet));
        assert_eq!(agents.classify(PIXEL).device, Some(Device::Mobile));
        assert_eq!(agents.classify(PIXEL).os, "Android");
        assert_eq!(agents.classify(PIXEL).browser, "Chrome");
        assert_eq!(agents.classify(GALAXY_TAB).device, Some(Device::Tablet));
        let firefox = agents.classify(WINDOWS_FIREFOX);
        assert_eq!(firefox.device, Some(Device::Desktop));
        assert_eq!(firefox.browser, "Firefox");
        assert_eq!(firefox.os, "Windows");
    }

    #[test]
    fn remembered_answers_are_the_parsed_ones() {
        let agents = UserAgents::new();
        for agent in [
            IPHONE,
            IPAD,
            PIXEL,
            GALAXY_TAB,
            WINDOWS_FIREFOX,
            "",
            "curl/8.5.0",
        ] {
            let first = agents.classify(agent);
            assert_eq!(agents.classify(agent), first);
            assert_eq!(agents.parse(agent.trim()), first);
        }
        let long = format!("{IPHONE} {}", "x".repeat(600));
        assert_eq!(agents.classify(&long), agents.parse(&long));
    }

    #[test]
    fn bots_and_preview_fetchers() {
        let agents = UserAgents::new();
        for crawler in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "curl/8.5.0",
            "",
        ] {
            let facts = agents.classify(crawler);
            assert!(facts.bot, "{crawler:?} is a bot");
            assert_eq!(facts.device, Some(Device::Bot));
            assert!(!facts.preview, "{crawler:?} is not a preview fetcher");
        }
        for fetcher in [
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "Twitterbot/1.0",
        ] {
            let facts = agents.classify(fetcher);
            assert!(
                facts.bot && facts.preview,
                "{fetcher:?} is a preview fetcher"
            );
        }
    }
}
