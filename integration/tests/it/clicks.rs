//! The redirect's click intelligence and `GET /api/v1/analytics`, against the real stack:
//! client IPs behind trusted proxies only, bots and preview fetchers, UTM, the test geo
//! database, exact breakdowns and filters, time zones, and a broker that is down.

use std::time::{Duration, Instant};

use linktrace_domain::{ClickFacts, ClientFacts, Device, EventRecord, Utm};
use linktrace_integration::{Running, TestAccount, TestEnv};
use serde_json::{json, Value};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

/// One visit: GET (or HEAD) through the api with these headers.
struct Visit<'a> {
    path: &'a str,
    user_agent: &'a str,
    forwarded_for: Option<&'a str>,
    referer: Option<&'a str>,
    head: bool,
}

impl<'a> Visit<'a> {
    fn get(path: &'a str, user_agent: &'a str) -> Self {
        Visit {
            path,
            user_agent,
            forwarded_for: None,
            referer: None,
            head: false,
        }
    }
    fn from(mut self, ip: &'a str) -> Self {
        self.forwarded_for = Some(ip);
        self
    }
    fn referred_by(mut self, referer: &'a str) -> Self {
        self.referer = Some(referer);
        self
    }
    async fn send(&self, env: &TestEnv, api: &Running) -> reqwest::Response {
        let url = api.url(self.path);
        let mut request = if self.head {
            env.http.head(url)
        } else {
            env.http.get(url)
        };
        request = request.header("user-agent", self.user_agent);
        if let Some(ip) = self.forwarded_for {
            request = request.header("x-forwarded-for", ip);
        }
        if let Some(referer) = self.referer {
            request = request.header("referer", referer);
        }
        request.send().await.expect("the redirect answers")
    }
}

fn click_id(response: &reqwest::Response) -> String {
    response.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// One stored click's columns, by click id (waits for the consumer to store it).
async fn stored_click(env: &TestEnv, click_id: &str, columns: &str) -> Vec<String> {
    let filter = format!("click_id = '{click_id}'");
    assert_eq!(
        env.wait_for_stored(&filter, 1, Duration::from_secs(20))
            .await,
        1,
        "click {click_id} stored once"
    );
    let sql = format!("SELECT {columns} FROM events WHERE {filter} FORMAT TabSeparated");
    let text: String = env
        .http
        .post(&env.clickhouse.url)
        .query(&[("database", env.clickhouse.database.as_str())])
        .body(sql)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.trim_end_matches('\n')
        .split('\t')
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_client_cannot_choose_its_ip_only_a_trusted_proxy_can_name_it() {
    let env = TestEnv::new().await;
    let consumer = env.spawn_consumer().await;
    // Nobody trusted: the TCP peer (loopback) is the client whatever the header says.
    let direct = env.spawn_api_with(&[("TRUSTED_PROXIES", "")]).await;
    // A gateway elsewhere is trusted, loopback is not.
    let elsewhere = env
        .spawn_api_with(&[("TRUSTED_PROXIES", "10.0.0.0/8")])
        .await;
    // The gateway on loopback, as deploy/up.sh runs it.
    let gateway = env.spawn_api().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "ipcheck1").await;

    for api in [&direct, &elsewhere] {
        let spoofed = Visit::get("/l/ipcheck1", FIREFOX)
            .from("9.9.9.9")
            .send(&env, api)
            .await;
        assert_eq!(spoofed.status(), 302);
        assert_eq!(
            stored_click(&env, &click_id(&spoofed), "ip, country").await,
            ["127.0.0.1", ""]
        );
    }
    // The gateway appended the address it saw after the client's own claim: that one counts.
    let via_gateway = Visit::get("/l/ipcheck1", FIREFOX)
        .from("9.9.9.9, 198.51.100.7")
        .send(&env, &gateway)
        .await;
    assert_eq!(
        stored_click(&env, &click_id(&via_gateway), "ip, country, city").await,
        ["198.51.100.7", "DE", "Berlin"]
    );
    for running in [direct, elsewhere, gateway, consumer] {
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn heads_crawlers_and_preview_fetchers_are_bots_and_previews_get_og_tags() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let (status, created) = env
        .caller(&api, &account.live_key)
        .create_link(json!({
            "destinationUrl": "https://shop.example/sale",
            "shortCode": "preview1",
            "metadata": {
                "title": "Winter sale <50% off>",
                "description": "Everything must go",
                "imageUrl": "https://img.example/sale.png"
            }
        }))
        .await;
    assert_eq!(status, 201, "{created}");

    let person = Visit::get("/l/preview1", IPHONE).send(&env, &api).await;
    assert_eq!(person.status(), 302);
    let head = Visit {
        head: true,
        ..Visit::get("/l/preview1", IPHONE)
    }
    .send(&env, &api)
    .await;
    assert_eq!(head.status(), 302, "a HEAD is answered like a GET");
    let crawler = Visit::get("/l/preview1", GOOGLEBOT).send(&env, &api).await;
    assert_eq!(crawler.status(), 302);
    let no_agent = Visit::get("/l/preview1", "").send(&env, &api).await;
    assert_eq!(no_agent.status(), 302);
    let slack = Visit::get("/l/preview1", SLACK).send(&env, &api).await;
    assert_eq!(
        slack.status(),
        200,
        "a preview fetcher gets the preview page"
    );
    let slack_click = click_id(&slack);
    let html = slack.text().await.unwrap();
    assert!(
        html.contains(r#"<meta property="og:title" content="Winter sale &lt;50% off&gt;">"#),
        "{html}"
    );
    assert!(html.contains(r#"<meta property="og:description" content="Everything must go">"#));
    assert!(html.contains(r#"<meta property="og:image" content="https://img.example/sale.png">"#));
    assert!(html.contains(r#"<meta property="og:url" content="http://links.test/l/preview1">"#));
    assert!(html.contains(r#"<meta name="twitter:card" content="summary_large_image">"#));

    assert_eq!(
        stored_click(&env, &click_id(&person), "bot, device").await,
        ["0", "mobile"]
    );
    for bot in [
        click_id(&head),
        click_id(&crawler),
        click_id(&no_agent),
        slack_click,
    ] {
        assert_eq!(stored_click(&env, &bot, "bot, device").await, ["1", "bot"]);
    }
    let count = |query: &'static str| {
        let (env, api, key) = (&env, &api, account.live_key.clone());
        async move {
            let (status, body) = env.caller(api, &key).analytics(query).await;
            assert_eq!(status, 200, "{body}");
            body["data"][0]["count"].as_u64().unwrap()
        }
    };
    assert_eq!(
        count("event=clicks").await,
        1,
        "bots are not clicks by default"
    );
    assert_eq!(count("event=clicks&includeBots=true").await, 5);
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn utm_values_are_recorded_and_merged_into_the_destination_with_link_defaults() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let (status, created) = env
        .caller(&api, &account.live_key)
        .create_link(json!({
            "destinationUrl": "https://shop.example/p?id=7&utm_source=old",
            "shortCode": "utmlink1",
            "utm": { "source": "twitter", "campaign": "launch" }
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["link"]["utm"],
        json!({ "source": "twitter", "campaign": "launch" })
    );

    let tagged = Visit::get(
        "/l/utmlink1?utm_source=newsletter&utm_medium=email&other=x",
        FIREFOX,
    )
    .send(&env, &api)
    .await;
    assert_eq!(
        tagged.headers()["location"].to_str().unwrap(),
        "https://shop.example/p?id=7&utm_source=newsletter&utm_medium=email&utm_campaign=launch"
    );
    assert_eq!(
        stored_click(
            &env,
            &click_id(&tagged),
            "utm_source, utm_medium, utm_campaign, utm_term"
        )
        .await,
        ["newsletter", "email", "launch", ""]
    );
    let plain = Visit::get("/l/utmlink1", FIREFOX).send(&env, &api).await;
    assert_eq!(
        plain.headers()["location"].to_str().unwrap(),
        "https://shop.example/p?id=7&utm_source=twitter&utm_campaign=launch"
    );
    assert_eq!(
        stored_click(&env, &click_id(&plain), "utm_source, utm_campaign").await,
        ["twitter", "launch"]
    );
    // Defaults can be changed and cleared.
    let (status, body) = env
        .caller(&api, &account.live_key)
        .update_link("utmlink1", json!({ "utm": null }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["link"]["utm"], json!({}));
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// GET /api/v1/analytics?{query} with the key: the `data` rows.
async fn analytics(env: &TestEnv, api: &Running, key: &str, query: &str) -> Vec<Value> {
    let (status, body) = env.caller(api, key).analytics(query).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(body["success"], true);
    body["data"].as_array().unwrap().clone()
}

/// The rows of [`analytics`] with their `uniques` taken out, after checking that each row
/// has them, labelled approximate, and that they equal `count` (every click of the mixes
/// below comes from a visitor of its own).
async fn analytics_of_distinct_visitors(
    env: &TestEnv,
    api: &Running,
    key: &str,
    query: &str,
) -> Vec<Value> {
    let mut rows = analytics(env, api, key, query).await;
    for row in &mut rows {
        let row = row.as_object_mut().unwrap();
        assert_eq!(
            row.remove("uniquesApproximate"),
            Some(json!(true)),
            "{query}"
        );
        assert_eq!(row.remove("uniques"), row.get("count").cloned(), "{query}");
    }
    rows
}

/// `[(key value, count)]` of a breakdown.
fn pairs(rows: &[Value], key: &str) -> Vec<(String, u64)> {
    rows.iter()
        .map(|row| {
            (
                row[key].as_str().unwrap().to_owned(),
                row["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect()
}

#[tokio::test]
async fn every_group_by_and_filter_is_exact_for_a_known_mix_of_clicks() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "mixa1234").await;
    env.create_link(&account, "mixb1234").await;

    // 9 clicks by people, 1 by a crawler:
    let visits = [
        Visit::get("/l/mixa1234?utm_source=newsletter&utm_medium=email&utm_campaign=bf&utm_term=shoes&utm_content=top", IPHONE).from("198.51.100.1").referred_by("https://www.google.com/search"),
        Visit::get("/l/mixa1234?utm_source=newsletter&utm_medium=email&utm_campaign=bf", IPHONE).from("198.51.100.2"),
        Visit::get("/l/mixa1234?utm_source=twitter", PIXEL).from("198.51.100.3").referred_by("https://t.co/x"),
        Visit::get("/l/mixa1234", PIXEL).from("203.0.113.1").referred_by("https://t.co/y"),
        Visit::get("/l/mixa1234", FIREFOX).from("203.0.113.2"),
        Visit::get("/l/mixb1234?utm_source=twitter", FIREFOX).from("192.0.2.1"),
        Visit::get("/l/mixb1234", IPAD).from("192.0.2.2"),
        Visit::get("/l/mixb1234", IPAD).from("100.64.0.1"),
        Visit::get("/l/mixb1234", FIREFOX).from("100.64.0.2").referred_by("https://news.ycombinator.com/"),
        Visit::get("/l/mixb1234", GOOGLEBOT).from("192.0.2.3"),
    ];
    for visit in &visits {
        assert_eq!(visit.send(&env, &api).await.status(), 302);
    }
    let filter = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&filter, 10, Duration::from_secs(30))
            .await,
        10
    );
    let key = account.live_key.as_str();
    let q = |query: &'static str| analytics_of_distinct_visitors(&env, &api, key, query);

    assert_eq!(q("").await, vec![json!({ "count": 9 })]);
    assert_eq!(
        q("groupBy=count&includeBots=true").await,
        vec![json!({ "count": 10 })]
    );
    assert_eq!(
        pairs(&q("groupBy=links").await, "shortCode"),
        owned(&[("mixa1234", 5), ("mixb1234", 4)])
    );
    assert_eq!(
        pairs(&q("groupBy=events&includeBots=true").await, "eventName"),
        owned(&[("click", 10)])
    );
    assert_eq!(
        pairs(&q("groupBy=countries").await, "country"),
        owned(&[("DE", 3), ("", 2), ("JP", 2), ("US", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=cities&country=DE,US").await, "city"),
        owned(&[("Berlin", 3), ("Boston", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=devices").await, "device"),
        owned(&[("mobile", 4), ("desktop", 3), ("tablet", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=devices&includeBots=true").await, "device"),
        owned(&[("mobile", 4), ("desktop", 3), ("tablet", 2), ("bot", 1)])
    );
    // OS families, not the parser's names (which said iPhone, iPad, Windows 10).
    assert_eq!(
        pairs(&q("groupBy=os").await, "os"),
        owned(&[("Windows", 3), ("Android", 2), ("iOS", 2), ("iPadOS", 2)])
    );
    assert_eq!(q("os=iOS").await, vec![json!({ "count": 2 })]);
    assert_eq!(
        env.stored_events(&format!("{filter} AND os IN ('iOS', 'iPadOS', 'Windows')"))
            .await,
        7,
        "stored as families"
    );
    assert_eq!(
        pairs(&q("groupBy=browsers").await, "browser"),
        owned(&[("Safari", 4), ("Firefox", 3), ("Chrome", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=referrers").await, "referrer"),
        owned(&[
            ("", 5),
            ("t.co", 2),
            ("google.com", 1),
            ("news.ycombinator.com", 1)
        ])
    );
    assert_eq!(
        pairs(&q("groupBy=utm_sources").await, "utmSource"),
        owned(&[("", 5), ("newsletter", 2), ("twitter", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=utm_mediums").await, "utmMedium"),
        owned(&[("", 7), ("email", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=utm_campaigns").await, "utmCampaign"),
        owned(&[("", 7), ("bf", 2)])
    );
    assert_eq!(
        pairs(&q("groupBy=utm_terms").await, "utmTerm"),
        owned(&[("", 8), ("shoes", 1)])
    );
    assert_eq!(
        pairs(&q("groupBy=utm_contents").await, "utmContent"),
        owned(&[("", 8), ("top", 1)])
    );

    // Filters: include lists, exclusions, combinations.
    assert_eq!(q("country=DE,JP").await, vec![json!({ "count": 5 })]);
    assert_eq!(q("country=-DE").await, vec![json!({ "count": 6 })]);
    assert_eq!(
        q("country=de&device=mobile").await,
        vec![json!({ "count": 3 })]
    );
    assert_eq!(
        q("shortCode=mixb1234&device=-tablet").await,
        vec![json!({ "count": 2 })]
    );
    assert_eq!(
        q("os=iOS,Android&browser=-Chrome").await,
        vec![json!({ "count": 2 })]
    );
    assert_eq!(q("referrer=t.co").await, vec![json!({ "count": 2 })]);
    assert_eq!(
        q("utmSource=twitter&utmMedium=-email").await,
        vec![json!({ "count": 2 })]
    );
    assert_eq!(
        q("utmCampaign=bf&utmMedium=email").await,
        vec![json!({ "count": 2 })]
    );
    assert_eq!(
        q("eventName=click&device=bot&includeBots=true").await,
        vec![json!({ "count": 1 })]
    );
    assert_eq!(
        pairs(&q("groupBy=countries&limit=1").await, "country"),
        owned(&[("DE", 3)])
    );
    // Another event kind, another environment, another account: nothing.
    assert_eq!(q("event=installs").await, vec![json!({ "count": 0 })]);
    assert_eq!(
        analytics_of_distinct_visitors(&env, &api, &account.test_key, "").await,
        vec![json!({ "count": 0 })]
    );
    let other = env.create_account("free").await;
    assert_eq!(
        analytics_of_distinct_visitors(&env, &api, &other.live_key, "includeBots=true").await,
        vec![json!({ "count": 0 })]
    );
    // A click stored before families were kept (the parser's name in the rollup) groups
    // and filters with the rest.
    env.clickhouse
        .client()
        .query(&format!(
            "INSERT INTO event_breakdowns_15m (account_id, environment, bucket, event_name, link_short_code, os, events) \
             VALUES ('{}', 'production', toStartOfFifteenMinutes(now()), 'click', 'mixa1234', 'iPhone', 1)",
            account.id
        ))
        .execute()
        .await
        .unwrap();
    // (That row has no visitor sketch: counts only from here on.)
    let counted = |query: &'static str| {
        let (env, api) = (&env, &api);
        async move { analytics(env, api, key, query).await }
    };
    assert_eq!(
        pairs(&counted("groupBy=os").await, "os"),
        owned(&[("Windows", 3), ("iOS", 3), ("Android", 2), ("iPadOS", 2)])
    );
    assert_eq!(counted("os=iOS").await[0]["count"], 3);
    assert_eq!(counted("os=iPhone").await[0]["count"], 3);
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// A click stored at `at` with some facts (produced straight to the stream, as the
/// redirect would, so its time is known).
fn click_at(account: &TestAccount, link: &str, at: &str, country: &str) -> EventRecord {
    let client = ClientFacts {
        facts: Some(ClickFacts {
            country: country.into(),
            device: Some(Device::Mobile),
            utm: Utm::default(),
            ..ClickFacts::default()
        }),
        ..ClientFacts::default()
    };
    EventRecord::click(
        account.id,
        link,
        uuid::Uuid::new_v4(),
        client,
        at.parse().unwrap(),
    )
}

#[tokio::test]
async fn series_follow_the_time_zone_and_ranges_count_to_the_millisecond() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "zone1234").await;
    for at in [
        "2026-11-01T20:00:00Z",
        "2026-11-02T01:00:00Z",
        "2026-11-02T01:07:30.250Z",
        "2026-11-03T12:00:00Z",
    ] {
        env.produce(&click_at(&account, "zone1234", at, "DE")).await;
    }
    let filter = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&filter, 4, Duration::from_secs(30))
            .await,
        4
    );
    let key = account.live_key.as_str();
    let series = |query: &'static str| {
        let (env, api) = (&env, &api);
        async move {
            analytics(env, api, key, query)
                .await
                .iter()
                .map(|row| {
                    (
                        row["time"].as_str().unwrap().to_owned(),
                        row["count"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let owned_times = |expected: &[(&str, u64)]| owned(expected);
    assert_eq!(
        series("groupBy=timeseries&from=2026-11-01&to=2026-11-03").await,
        owned_times(&[
            ("2026-11-01T00:00:00+00:00", 1),
            ("2026-11-02T00:00:00+00:00", 2),
            ("2026-11-03T00:00:00+00:00", 1)
        ])
    );
    // +5:30: 20:00Z on 1 November is 01:30 on the 2nd; the date bounds are Kolkata's too.
    assert_eq!(
        series("groupBy=timeseries&from=2026-11-01&to=2026-11-03&timezone=Asia/Kolkata").await,
        owned_times(&[
            ("2026-11-01T00:00:00+05:30", 0),
            ("2026-11-02T00:00:00+05:30", 3),
            ("2026-11-03T00:00:00+05:30", 1)
        ])
    );
    // -8:00: the 2 November clicks at 01:00Z are still 1 November in Los Angeles.
    assert_eq!(
        series("groupBy=timeseries&from=2026-11-01&to=2026-11-03&timezone=America/Los_Angeles")
            .await,
        owned_times(&[
            ("2026-11-01T00:00:00-07:00", 3),
            ("2026-11-02T00:00:00-08:00", 0),
            ("2026-11-03T00:00:00-08:00", 1)
        ])
    );
    assert_eq!(
        series(
            "groupBy=timeseries&interval=hour&from=2026-11-02T00:00:00Z&to=2026-11-02T03:00:00Z"
        )
        .await,
        owned_times(&[
            ("2026-11-02T00:00:00+00:00", 0),
            ("2026-11-02T01:00:00+00:00", 2),
            ("2026-11-02T02:00:00+00:00", 0)
        ])
    );
    assert_eq!(
        series(
            "groupBy=timeseries&interval=month&from=2026-10-15T00:00:00Z&to=2026-12-01T00:00:00Z"
        )
        .await,
        owned_times(&[
            ("2026-10-01T00:00:00+00:00", 0),
            ("2026-11-01T00:00:00+00:00", 4)
        ])
    );
    assert_eq!(
        series("groupBy=timeseries&interval=week&from=2026-10-26&to=2026-11-08").await,
        owned_times(&[
            ("2026-10-26T00:00:00+00:00", 1),
            ("2026-11-02T00:00:00+00:00", 3)
        ])
    );
    // Bounds inside a fifteen-minute bucket count to the millisecond.
    let count = |query: &'static str| {
        let (env, api) = (&env, &api);
        async move {
            analytics(env, api, key, query).await[0]["count"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(
        count("from=2026-11-02T01:00:00Z&to=2026-11-02T01:07:30.250Z").await,
        1
    );
    assert_eq!(
        count("from=2026-11-02T01:00:00Z&to=2026-11-02T01:07:30.251Z").await,
        2
    );
    assert_eq!(
        count("from=2026-11-02T01:00:00.001Z&to=2026-11-02T01:07:30.251Z").await,
        1
    );
    assert_eq!(
        count("from=2026-11-01T19:59:59Z&to=2026-11-03T12:00:00.001Z").await,
        4
    );
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// Spec, "Links at scale": every analytics v2 row carries `uniques` (distinct visitor keys
/// for clicks, distinct users for events), labelled approximate. A known mix: sketches merge
/// across fifteen-minute buckets, across the raw events of a partial bucket, and within a
/// breakdown's rows; a sum of per-bucket uniques would count visitor 1 twice in 10:00-11:00.
#[tokio::test]
async fn uniques_count_distinct_visitors_and_users_for_a_known_mix() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "uniq1234").await;
    let click = |visitor: &str, at: &str, country: &str| {
        let mut record = click_at(&account, "uniq1234", at, country);
        if let Some(facts) = record.client.as_mut().and_then(|c| c.facts.as_mut()) {
            facts.visitor = visitor.to_owned();
        }
        record
    };
    let visits = [
        ("v1", "2026-11-02T10:00:00Z", "DE"),
        ("v1", "2026-11-02T10:20:00Z", "DE"),
        ("v1", "2026-11-02T11:30:00Z", "DE"),
        ("v2", "2026-11-02T10:05:00Z", "DE"),
        ("v2", "2026-11-02T13:00:00Z", "DE"),
        ("v3", "2026-11-02T12:00:00Z", "JP"),
    ];
    for (visitor, at, country) in visits {
        env.produce(&click(visitor, at, country)).await;
    }
    let purchases = [
        ("u1", "2026-11-02T10:10:00Z"),
        ("u1", "2026-11-02T12:10:00Z"),
        ("u2", "2026-11-02T12:20:00Z"),
    ];
    for (user, at) in purchases {
        let mut record = EventRecord::new(
            uuid::Uuid::new_v4(),
            account.id,
            linktrace_domain::Environment::Live,
            "purchase",
            linktrace_domain::EventSource::Api,
            at.parse().unwrap(),
        );
        record.user_id = Some(user.to_owned());
        env.produce(&record).await;
    }
    let filter = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&filter, 9, Duration::from_secs(30))
            .await,
        9
    );
    let key = account.live_key.as_str();
    let rows = |query: String| {
        let (env, api) = (&env, &api);
        async move {
            analytics(env, api, key, &query)
                .await
                .iter()
                .map(|row| {
                    assert_eq!(row["uniquesApproximate"], true, "{query}: {row}");
                    let label = ["time", "country"]
                        .iter()
                        .find_map(|k| row[k].as_str())
                        .unwrap_or("")
                        .to_owned();
                    (
                        label,
                        row["count"].as_u64().unwrap(),
                        row["uniques"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let day = "from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z";
    let expect = |rows: &[(&str, u64, u64)]| -> Vec<(String, u64, u64)> {
        rows.iter()
            .map(|(l, c, u)| ((*l).to_owned(), *c, *u))
            .collect()
    };
    assert_eq!(rows(day.to_owned()).await, expect(&[("", 6, 3)]));
    assert_eq!(
        rows(format!("{day}&groupBy=countries")).await,
        expect(&[("DE", 5, 2), ("JP", 1, 1)])
    );
    assert_eq!(
        rows(
            "groupBy=timeseries&interval=hour&from=2026-11-02T10:00:00Z&to=2026-11-02T14:00:00Z"
                .into()
        )
        .await,
        expect(&[
            ("2026-11-02T10:00:00+00:00", 3, 2),
            ("2026-11-02T11:00:00+00:00", 1, 1),
            ("2026-11-02T12:00:00+00:00", 1, 1),
            ("2026-11-02T13:00:00+00:00", 1, 1),
        ])
    );
    // +5:30: Kolkata's day of 2 November holds every click; its hours start at UTC's half
    // hours, so each holds halves of two UTC hours.
    assert_eq!(
        rows(format!("{day}&groupBy=timeseries&timezone=Asia/Kolkata")).await,
        expect(&[
            ("2026-11-02T00:00:00+05:30", 6, 3),
            ("2026-11-03T00:00:00+05:30", 0, 0),
        ])
    );
    assert_eq!(
        rows("groupBy=timeseries&interval=hour&timezone=Asia/Kolkata&from=2026-11-02T10:00:00Z&to=2026-11-02T12:00:00Z".into())
            .await,
        expect(&[
            ("2026-11-02T15:00:00+05:30", 3, 2),
            ("2026-11-02T16:00:00+05:30", 0, 0),
            ("2026-11-02T17:00:00+05:30", 1, 1),
        ])
    );
    // A partial bucket at the start: 10:01 leaves out visitor 1's 10:00 click, and the 10:05
    // click is read from the raw events, merged with the rollup's sketches.
    assert_eq!(
        rows("from=2026-11-02T10:01:00Z&to=2026-11-03T00:00:00Z".into()).await,
        expect(&[("", 5, 3)])
    );
    assert_eq!(
        rows("from=2026-11-02T10:01:00Z&to=2026-11-02T11:00:00Z".into()).await,
        expect(&[("", 2, 2)])
    );
    // Events: distinct users.
    assert_eq!(
        rows(format!("{day}&event=purchase")).await,
        expect(&[("", 3, 2)])
    );
    assert_eq!(
        rows(format!("{day}&event=events")).await,
        expect(&[("", 3, 2)])
    );
    assert_eq!(
        rows(format!("{day}&event=installs")).await,
        expect(&[("", 0, 0)])
    );
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn bad_parameters_get_a_400_naming_the_parameter() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    for (query, names) in [
        ("groupBy=nope", "groupBy"),
        ("event=no-such-thing!", "event"),
        ("timezone=Mars/Olympus", "timezone"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-11-02&to=2026-11-01", "from"),
        ("from=2024-01-01&to=2026-01-01", "from"),
        (
            "groupBy=timeseries&interval=hour&from=2026-01-01&to=2026-03-01",
            "interval",
        ),
        ("interval=fortnight", "interval"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("country=", "country"),
        ("device=mobile,,tablet", "device"),
        ("includeBots=yes", "includeBots"),
        ("groupby=countries", "groupby"),
    ] {
        let (status, body) = env.caller(&api, &account.live_key).analytics(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "VALIDATION_ERROR", "{query}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");
    }
    let (status, _) = env.anonymous(&api).analytics("").await;
    assert_eq!(status, 401);
    api.stop().await.unwrap();
}

/// The broker is unreachable: every redirect still answers at once, and each click the
/// broker never took is counted as lost.
#[tokio::test]
async fn with_the_broker_down_redirects_keep_their_latency_and_lost_clicks_are_counted() {
    let env = TestEnv::new().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "down1234").await;
    let api = env
        .spawn_api_with(&[
            ("KAFKA_BROKERS", "127.0.0.1:9"),
            ("KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS", "1500"),
        ])
        .await;
    let lost_before = lost_clicks(&env, &api).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let response = Visit::get("/l/down1234", FIREFOX).send(&env, &api).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status(), 302);
    }
    assert!(
        slowest < Duration::from_millis(250),
        "the slowest redirect took {slowest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while lost_clicks(&env, &api).await < lost_before + 20.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lost_clicks(&env, &api).await - lost_before, 20.0);
    api.stop().await.unwrap();
}

async fn lost_clicks(env: &TestEnv, api: &Running) -> f64 {
    let text = env
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("redirect_clicks_total{") && line.contains("recorded=\"false\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The database deploy/up.sh installs from the npm registry (deploy/test.sh exports its
/// path) is one the api reads: well-known addresses land in their countries.
#[test]
fn the_installed_geo_database_places_well_known_addresses() {
    let Ok(path) = std::env::var("GEOIP_DATABASE") else {
        assert!(
            std::env::var("CI").is_err(),
            "deploy/test.sh installs the database and exports GEOIP_DATABASE"
        );
        return;
    };
    let geo = linktrace_api::clicks::GeoDatabase::open(&path).expect("a MaxMind-format database");
    assert_eq!(geo.locate("8.8.8.8".parse().unwrap()).country, "US");
    assert_eq!(
        geo.locate("2001:4860:4860::8888".parse().unwrap()).country,
        "US"
    );
    assert_eq!(geo.locate("193.99.144.80".parse().unwrap()).country, "DE");
    assert_eq!(geo.locate("127.0.0.1".parse().unwrap()).country, "");
}

/// With `CLICK_IP_ANONYMISATION=truncate` no full address is stored, the facts worked out
/// from it still are, and fingerprint attribution compares truncated with truncated.
#[tokio::test]
async fn anonymised_ips_keep_their_facts_and_still_match_fingerprints() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[("CLICK_IP_ANONYMISATION", "truncate")])
        .await;
    let dropping = env
        .spawn_api_with(&[("CLICK_IP_ANONYMISATION", "drop")])
        .await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "anon1234").await;

    let click = Visit::get("/l/anon1234", IPHONE)
        .from("198.51.100.77")
        .send(&env, &api)
        .await;
    let stored = stored_click(&env, &click_id(&click), "ip, country, length(visitor)").await;
    assert_eq!(stored, ["198.51.100.0", "DE", "32"]);
    let dropped = Visit::get("/l/anon1234", IPHONE)
        .from("198.51.100.78")
        .send(&env, &dropping)
        .await;
    assert_eq!(
        stored_click(&env, &click_id(&dropped), "ip, country").await,
        ["", "DE"]
    );
    assert_eq!(
        env.stored_events("ip LIKE '198.51.100.7%'").await,
        0,
        "no full address stored"
    );

    // The installing device reports its full address: it is truncated before the match.
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "anon-user", "ip": "198.51.100.77", "platform": "ios" }))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["attribution"]["matchType"], "fingerprint",
        "{answer}"
    );
    assert_eq!(answer["attribution"]["clickId"], click_id(&click));
    for running in [api, dropping, consumer] {
        running.stop().await.unwrap();
    }
}

/// The real gateway (nginx with `deploy/nginx/gateway.conf.template`) is the only hop the
/// api trusts: it sets X-Forwarded-For to the address it saw and reaches the api from an
/// address of its own (127.0.0.2), so a client on the same machine can choose its recorded
/// IP neither through the gateway nor by calling the api directly. Before the fix the
/// gateway appended to the client's header and the api trusted all of loopback: a forged
/// `X-Forwarded-For: 9.9.9.9` was recorded as the click's IP both ways.
#[tokio::test]
async fn a_local_client_cannot_choose_its_ip_through_the_gateway_or_around_it() {
    let env = TestEnv::new().await;
    let consumer = env.spawn_consumer().await;
    let ingest = env.spawn_ingest().await;
    let api = env
        .spawn_api_with(&[("TRUSTED_PROXIES", "127.0.0.2")])
        .await;
    let gateway = linktrace_integration::Gateway::start(ingest.port, api.port, "127.0.0.2").await;
    let account = env.create_account("free").await;
    env.create_link(&account, "ipgate12").await;

    let through = env
        .http
        .get(gateway.url("/l/ipgate12"))
        .header("user-agent", FIREFOX)
        .header("x-forwarded-for", "9.9.9.9")
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), 302);
    let around = Visit::get("/l/ipgate12", FIREFOX)
        .from("9.9.9.9")
        .send(&env, &api)
        .await;
    assert_eq!(around.status(), 302);
    for response in [&through, &around] {
        assert_eq!(
            stored_click(&env, &click_id(response), "ip").await,
            ["127.0.0.1"]
        );
    }
    consumer.stop().await.unwrap();
}

/// The visitor key's salt is random per UTC day, shared by every api instance through
/// Postgres (so a visitor clicking through two instances is one visitor: uniques within a
/// day are exact) and destroyed once its day is over, so a stored key cannot be recomputed
/// from an IP later. Before the fix it was one fixed salt (`VISITOR_SALT`), and an exported
/// /24 plus 256 hashes gave back the full IP.
#[tokio::test]
async fn visitor_keys_use_a_shared_daily_salt_that_is_destroyed_after_its_day() {
    use chrono::Utc;
    use linktrace_api::clicks::{VisitorKeys, VisitorSalts};
    let env = TestEnv::new().await;
    let consumer = env.spawn_consumer().await;
    let first = env.spawn_api().await;
    let second = env.spawn_api().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "salty123").await;
    let mut visitors = Vec::new();
    for api in [&first, &second] {
        let click = Visit::get("/l/salty123", FIREFOX)
            .from("198.51.100.7")
            .send(&env, api)
            .await;
        assert_eq!(click.status(), 302);
        visitors.push(stored_click(&env, &click_id(&click), "visitor").await[0].clone());
    }
    assert_eq!(
        visitors[0], visitors[1],
        "one visitor through two instances"
    );
    assert_eq!(visitors[0].len(), 32);
    let today = Utc::now().date_naive();
    let days: Vec<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT day FROM visitor_salts ORDER BY day")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(days, [today, today + chrono::TimeDelta::days(1)]);

    // A day that is over loses its salt, here and in every instance's memory.
    let yesterday = today - chrono::TimeDelta::days(1);
    sqlx::query("INSERT INTO visitor_salts (day, salt) VALUES ($1, $2)")
        .bind(yesterday)
        .bind(vec![9u8; 32])
        .execute(&env.pool)
        .await
        .unwrap();
    let keys = VisitorKeys::new();
    keys.install(yesterday, [9; 32]);
    let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let at_yesterday = Utc::now() - chrono::TimeDelta::days(1);
    let before = keys.key(ip, FIREFOX, at_yesterday);
    let salts = VisitorSalts::new(env.pool.clone());
    // Just after midnight the day before is kept (clicks stamped before midnight).
    let just_after = today.and_hms_opt(0, 2, 0).unwrap().and_utc();
    salts.refresh(&keys, just_after).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM visitor_salts WHERE day = $1")
        .bind(yesterday)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    salts
        .refresh(
            &keys,
            Utc::now().max(today.and_hms_opt(0, 10, 0).unwrap().and_utc()),
        )
        .await
        .unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM visitor_salts WHERE day < $1")
        .bind(today)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0, "destroyed");
    assert_ne!(
        keys.key(ip, FIREFOX, at_yesterday),
        before,
        "no longer computable"
    );
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// Repeated clicks (spec, "Keys, limits and abuse"): a visitor's clicks on a link within an
/// hour of a counted one are all stored, flagged as repeats, counted once by default
/// (`includeRepeats=true` counts them all) and fire no webhook — even when they arrive
/// through different api instances. Before the fix 3,000 requests from one IP and user
/// agent in a second were 3,000 human clicks, each a webhook delivery.
#[tokio::test]
async fn repeated_clicks_are_stored_flagged_and_counted_once() {
    use linktrace_integration::receiver::WebhookReceiver;
    let env = TestEnv::new().await;
    let consumer = env.spawn_consumer().await;
    let first = env.spawn_api().await;
    let second = env.spawn_api().await;
    let worker = env.spawn_webhooks_with(&[]).await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "again123").await;
    env.create_link(&account, "other123").await;
    let receiver = WebhookReceiver::start().await;
    let (status, body) = env
        .caller(&first, &account.live_key)
        .create_webhook(json!({ "url": receiver.url(), "events": ["click"] }))
        .await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let visits = [
        ("/l/again123", "198.51.100.7", &first),
        ("/l/again123", "198.51.100.7", &second),
        ("/l/again123", "198.51.100.7", &first),
        ("/l/other123", "198.51.100.7", &second),
        ("/l/again123", "198.51.100.8", &first),
    ];
    for (path, ip, api) in visits {
        let response = Visit::get(path, FIREFOX).from(ip).send(&env, api).await;
        assert_eq!(response.status(), 302);
    }
    let clicks = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&clicks, 5, Duration::from_secs(20))
            .await,
        5,
        "every click stored"
    );
    assert_eq!(
        env.stored_events(&format!("{clicks} AND is_repeat = 1"))
            .await,
        2,
        "the second and third on again123 by the same visitor"
    );
    let key = account.live_key.as_str();
    assert_eq!(
        analytics(&env, &first, key, "").await,
        vec![json!({ "count": 3, "uniques": 2, "uniquesApproximate": true })]
    );
    // Repeats are the same visitors: more clicks, no more uniques.
    assert_eq!(
        analytics(&env, &first, key, "includeRepeats=true").await,
        vec![json!({ "count": 5, "uniques": 2, "uniquesApproximate": true })]
    );
    assert_eq!(
        pairs(
            &analytics(&env, &first, key, "groupBy=links").await,
            "shortCode"
        ),
        owned(&[("again123", 2), ("other123", 1)])
    );
    // Webhooks: the counted clicks only.
    let got = receiver
        .wait_until(Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 3, "{}", got.len());
    worker.stop().await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// A visitor's first clicks on a link, decided at once by several api instances (each
/// click's repeat check runs in its own background task), count once: the rest are
/// repeats. Before the fix a check that lost the race for the window's row read the
/// snapshot taken before the winner's insert, found no window and counted its click too.
#[tokio::test]
async fn first_clicks_racing_through_several_instances_count_once() {
    use linktrace_api::clicks::repeats::RepeatClicks;
    let pool = linktrace_integration::test_postgres().await;
    let instances: Vec<std::sync::Arc<RepeatClicks>> = (0..8)
        .map(|_| std::sync::Arc::new(RepeatClicks::new(pool.clone(), Duration::from_secs(3600))))
        .collect();
    let at = chrono::Utc::now();
    let mut counted_per_visitor = Vec::new();
    for visitor in 0..40 {
        let short_code = format!("race{}", uuid::Uuid::new_v4().simple());
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(instances.len()));
        let checks: Vec<_> = instances
            .iter()
            .map(|repeats| {
                let (repeats, start, short_code) =
                    (repeats.clone(), start.clone(), short_code.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    repeats
                        .is_repeat(&short_code, &format!("visitor{visitor}"), at)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut counted = 0;
        for check in checks {
            if !check.await.unwrap() {
                counted += 1;
            }
        }
        counted_per_visitor.push(counted);
    }
    assert!(
        counted_per_visitor.iter().all(|&n| n == 1),
        "clicks counted per visitor: {counted_per_visitor:?}"
    );
}
