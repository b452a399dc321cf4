//! What the redirect learns about a click before it sends the visitor on: who the client
//! is (behind trusted proxies only), what it runs, where it is, whether it is a person,
//! and which campaign sent it. Enrichment runs here, in the redirect, not in the consumer:
//! the raw IP never leaves this process when anonymisation is on, and the record on the
//! stream is complete (what the consumer, webhooks and anyone replaying the topic read).
//! `bench/run.sh` measures its cost per click.

pub mod config;
pub mod geo;
pub mod install_referrer;
pub mod preview;
pub mod repeats;
pub mod user_agent;
pub mod utm;
pub mod visitor;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use linktrace_domain::{ClickFacts, ClientFacts, Device, Utm};

pub use config::ClickConfig;
pub use geo::GeoDatabase;
pub use linktrace_platform::client_ip::{self, TrustedProxies};
pub use user_agent::{AgentFacts, Platform, UserAgents};
pub use visitor::{IpPolicy, VisitorKeys, VisitorSalts};

/// One request to follow a link, as the redirect saw it.
#[derive(Debug)]
pub struct ClickRequest<'a> {
    pub head: bool,
    pub ip: IpAddr,
    pub user_agent: &'a str,
    pub referrer: Option<&'a str>,
    pub utm: Utm,
    pub click_id: String,
    pub at: DateTime<Utc>,
}

/// A click worked out: what is stored, and whether a preview page is due instead of a 302.
#[derive(Debug)]
pub struct EnrichedClick {
    pub client: ClientFacts,
    pub preview: bool,
    /// Which of the link's URLs the device follows.
    pub platform: Platform,
}

/// Everything enrichment needs, built once at start.
pub struct ClickEnricher {
    pub trusted_proxies: TrustedProxies,
    agents: UserAgents,
    geo: Option<GeoDatabase>,
    /// Public: the api's keeper installs each day's shared salt in it.
    pub visitors: std::sync::Arc<VisitorKeys>,
    ip_policy: IpPolicy,
}

impl ClickEnricher {
    pub fn from_config(config: &ClickConfig) -> anyhow::Result<Self> {
        let geo = match config.geoip_database.trim() {
            "" => None,
            path => Some(GeoDatabase::open(path)?),
        };
        Ok(Self {
            trusted_proxies: config.trusted_proxies.parse()?,
            agents: UserAgents::new(),
            geo,
            visitors: std::sync::Arc::new(VisitorKeys::new()),
            ip_policy: config.ip_anonymisation.parse()?,
        })
    }

    /// The policy stored click IPs follow (fingerprint look-ups apply it too).
    pub fn ip_policy(&self) -> IpPolicy {
        self.ip_policy
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub fn enrich(&self, click: ClickRequest<'_>) -> EnrichedClick {
        let agent = self.agents.classify(click.user_agent);
        let bot = click.head || agent.bot;
        let place = self
            .geo
            .as_ref()
            .map(|geo| geo.locate(click.ip))
            .unwrap_or_default();
        let facts = ClickFacts {
            country: place.country,
            city: place.city,
            device: if bot { Some(Device::Bot) } else { agent.device },
            os: agent.os,
            browser: agent.browser,
            referrer_host: click.referrer.map(referrer_host).unwrap_or_default(),
            utm: click.utm,
            bot,
            visitor: self.visitors.key(click.ip, click.user_agent, click.at),
            // Decided after the visitor has gone on (`RepeatClicks`).
            repeat: false,
        };
        EnrichedClick {
            client: ClientFacts {
                ip: self.ip_policy.apply(click.ip),
                user_agent: Some(click.user_agent.to_owned()),
                referrer: click.referrer.map(str::to_owned),
                platform: Some(agent.platform.as_str().to_owned()),
                click_id: Some(click.click_id),
                facts: Some(facts),
            },
            preview: agent.preview && !click.head,
            platform: agent.platform,
        }
    }
}

/// The host of a `Referer` URL, lower case, without `www.`; empty when it is not a URL.
pub fn referrer_host(referrer: &str) -> String {
    url::Url::parse(referrer)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .map(|host| host.strip_prefix("www.").map(str::to_owned).unwrap_or(host))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_hosts() {
        assert_eq!(
            referrer_host("https://www.Google.com/search?q=x"),
            "google.com"
        );
        assert_eq!(referrer_host("android-app://com.slack/"), "com.slack");
        assert_eq!(referrer_host("not a url"), "");
    }
}
