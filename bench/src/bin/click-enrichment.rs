//! Where a click's enrichment time goes: each step the redirect runs per click, timed over a
//! mix of real-world clicks (people on phones, tablets and desktops, crawlers, preview
//! fetchers; addresses in several countries; UTM and referrers), median of rounds.
//!   click-enrichment [GEOIP_DATABASE] [ROUNDS]   → one JSON object: step → ns per click
//! bench/redirect.sh runs it with the database deploy installs.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use chrono::Utc;
use linktrace_api::clicks::{
    self, utm, ClickConfig, ClickEnricher, ClickRequest, GeoDatabase, UserAgents, VisitorKeys,
};
use linktrace_domain::EventRecord;

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
];
const ADDRESSES: &[&str] = &[
    "8.8.8.8",
    "193.99.144.80",
    "1.1.1.1",
    "81.2.69.160",
    "200.160.2.3",
    "103.21.244.1",
    "2001:4860:4860::8888",
    "2a00:1450:4001:82a::200e",
    "41.0.0.1",
    "100.64.0.1",
];
const REFERRERS: &[Option<&str>] = &[
    Some("https://www.google.com/search?q=shoes"),
    None,
    Some("https://t.co/abc"),
    None,
    Some("https://news.ycombinator.com/item?id=1"),
];
const QUERIES: &[Option<&str>] = &[
    Some("utm_source=newsletter&utm_medium=email&utm_campaign=black_friday"),
    None,
    Some("utm_source=twitter"),
    None,
];

/// Median over `rounds` of the ns per call of `step` over `calls` calls.
fn time(rounds: usize, calls: usize, mut step: impl FnMut(usize)) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for i in 0..calls {
                step(i);
            }
            started.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let database = args.get(1).cloned().unwrap_or_default();
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(7);
    let calls = 100_000;
    let ips: Vec<IpAddr> = ADDRESSES.iter().map(|a| a.parse().unwrap()).collect();
    let pick = |i: usize, n: usize| (i.wrapping_mul(7919) >> 3) % n;

    let parser = woothee::parser::Parser::new();
    let bots = isbot::Bots::default();
    let agents = UserAgents::new();
    let geo = if database.is_empty() {
        None
    } else {
        Some(GeoDatabase::open(&database)?)
    };
    let visitors = VisitorKeys::new();
    let enricher = ClickEnricher::from_config(&ClickConfig {
        trusted_proxies: "127.0.0.1".into(),
        geoip_database: database.clone(),
        ip_anonymisation: "keep".into(),
        repeat_window_secs: 3600,
    })?;
    let now = Utc::now();
    let click = |i: usize| ClickRequest {
        head: false,
        ip: ips[pick(i, ips.len())],
        user_agent: USER_AGENTS[pick(i, USER_AGENTS.len())],
        referrer: REFERRERS[pick(i, REFERRERS.len())],
        utm: utm::from_query(QUERIES[pick(i, QUERIES.len())]),
        click_id: String::from("6b1f2c1e-8a1e-4a57-9a43-1c8a3e2f0b11"),
        at: now,
    };

    let mut steps = serde_json::Map::new();
    let mut put = |name: &str, ns: f64| {
        steps.insert(
            name.to_owned(),
            serde_json::json!((ns * 10.0).round() / 10.0),
        );
    };
    put(
        "user agent: woothee parse",
        time(rounds, calls, |i| {
            black_box(parser.parse(black_box(USER_AGENTS[pick(i, USER_AGENTS.len())])));
        }),
    );
    put(
        "bots: isbot pattern list",
        time(rounds, calls, |i| {
            black_box(bots.is_bot(black_box(USER_AGENTS[pick(i, USER_AGENTS.len())])));
        }),
    );
    put(
        "user agent, first sight (woothee + isbot + preview list)",
        time(rounds, calls, |i| {
            black_box(agents.parse(black_box(USER_AGENTS[pick(i, USER_AGENTS.len())])));
        }),
    );
    put(
        "user agent, seen before (remembered answer)",
        time(rounds, calls, |i| {
            black_box(agents.classify(black_box(USER_AGENTS[pick(i, USER_AGENTS.len())])));
        }),
    );
    if let Some(geo) = &geo {
        put(
            "country: maxminddb look-up",
            time(rounds, calls, |i| {
                black_box(geo.locate(black_box(ips[pick(i, ips.len())])));
            }),
        );
    }
    put(
        "visitor key: SHA-256",
        time(rounds, calls, |i| {
            black_box(visitors.key(
                ips[pick(i, ips.len())],
                USER_AGENTS[pick(i, USER_AGENTS.len())],
                now,
            ));
        }),
    );
    put(
        "referrer host: URL parse",
        time(rounds, calls, |i| {
            black_box(REFERRERS[pick(i, REFERRERS.len())].map(clicks::referrer_host));
        }),
    );
    put(
        "UTM: read and merge into the destination",
        time(rounds, calls, |i| {
            let values = utm::from_query(QUERIES[pick(i, QUERIES.len())]);
            black_box(utm::merge_into("https://shop.example/p?id=7", &values));
        }),
    );
    put(
        "enrich(): all of the above, per click",
        time(rounds, calls, |i| {
            black_box(enricher.enrich(click(i)));
        }),
    );
    let account = uuid::Uuid::nil();
    put(
        "enrich() and the click record's JSON",
        time(rounds, calls, |i| {
            let client = enricher.enrich(click(i)).client;
            black_box(EventRecord::click(account, "bench123", account, client, now).to_json());
        }),
    );
    println!("{}", serde_json::Value::Object(steps));
    Ok(())
}
