//! The dashboard page in a real headless browser (Debian's Chromium): it loads the
//! account's links, funnel, series and webhooks through the public API and shows them.

use std::process::Command;
use std::time::Duration;

use linktrace_integration::receiver::WebhookReceiver;
use linktrace_integration::{event, TestEnv};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Headless Chromium on `url` with `action` (`--dump-dom`, `--screenshot=…`), in a fresh
/// profile, without the background networking this closed machine refuses.
fn chromium_on(url: &str, action: &[&str]) -> std::process::Output {
    let browser = chromium().expect("chromium is installed by deploy/test.sh");
    let profile = tempdir();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=10000",
        ])
        .args(action)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    output
}

/// The page's DOM after its scripts ran.
fn render(url: &str) -> String {
    String::from_utf8_lossy(&chromium_on(url, &["--dump-dom"]).stdout).into_owned()
}

/// A PNG of the rendered page (for the README: `LINKTRACE_DASHBOARD_SCREENSHOT=docs/dashboard.png`).
fn screenshot(url: &str, path: &str) {
    let output = chromium_on(
        url,
        &["--window-size=1100,1900", &format!("--screenshot={path}")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lt-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A one-time sign-in link of `key`'s, on the api under test, with a view in its fragment
/// (a link is redeemed once: one a render).
async fn sign_in_url(
    env: &TestEnv,
    api: &linktrace_integration::Running,
    key: &str,
    fragment: &str,
) -> String {
    let (status, link) = env
        .caller(api, key)
        .create_sign_in_link(serde_json::json!({}))
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    // The link is on the public base URL; the test reaches the api by its own address.
    let path = &url[url.find("/dashboard/sign-in/").expect("a sign-in path")..];
    format!("{}{fragment}", api.url(path))
}

/// The sum of a data attribute over the rows of a chart's table of numbers.
fn chart_sum(dom: &str, figure: &str, attribute: &str) -> u64 {
    let start = dom
        .find(&format!(r#"<figure id="{figure}""#))
        .unwrap_or_else(|| panic!("no {figure} chart: {dom}"));
    let chart = &dom[start..];
    let chart = &chart[..chart.find("</figure>").unwrap()];
    let needle = format!(r#"data-{attribute}=""#);
    chart
        .match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &chart[at + needle.len()..];
            rest[..rest.find('"').unwrap()].parse::<u64>().ok()
        })
        .sum()
}

#[tokio::test]
async fn the_dashboard_shows_links_funnel_series_and_comparisons_after_a_sign_in_link() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let webhooks = env.spawn_webhooks_with(&[]).await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "dash1234").await;
    env.create_link(&account, "dash5678").await;
    // A webhook whose receiver takes every purchase, and one whose receiver is failing.
    let receiver = WebhookReceiver::start().await;
    let failing = WebhookReceiver::start().await;
    failing.answer(500);
    let mut hooks = Vec::new();
    for target in [&receiver, &failing] {
        let (status, created) = env
            .caller(&api, &account.live_key)
            .create_webhook(serde_json::json!({ "url": target.url(), "events": ["purchase"] }))
            .await;
        assert_eq!(status, 201, "{created}");
        hooks.push(created["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Two people (Berlin on an iPhone from a newsletter, Tokyo on Firefox) and a crawler,
    // through the trusted gateway address (the test api trusts loopback, as deploy does).
    for (user_agent, ip, query) in [
        (
            IPHONE,
            "198.51.100.7",
            "?utm_source=newsletter&utm_campaign=bf",
        ),
        (FIREFOX, "203.0.113.7", ""),
        (GOOGLEBOT, "192.0.2.7", ""),
    ] {
        let response = env
            .http
            .get(api.url(&format!("/l/dash1234{query}")))
            .header("user-agent", user_agent)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    for (order, amount, currency) in [("a", 10.0, "EUR"), ("b", 2.5, "EUR"), ("c", 7.0, "USD")] {
        let mut purchase = event("dash1234", "purchase", Some(order));
        purchase["revenue"] = serde_json::json!({ "amount": amount, "currency": currency });
        let (status, _) = env
            .caller(&ingest, &account.live_key)
            .send_event(purchase)
            .await;
        assert_eq!(status, 202);
    }
    // An installed app opened through the link (re-engagement): the funnel shows opens.
    let (status, _) = env
        .caller(&api, &account.live_key)
        .report_open(serde_json::json!({ "shortCode": "dash1234", "userId": "returning-user" }))
        .await;
    assert_eq!(status, 200);
    // An install the app reports with the link it opened with (a deep link).
    let (status, attributed) = env
        .caller(&api, &account.live_key)
        .attribute(serde_json::json!({ "userId": "installer-1", "shortCode": "dash1234" }))
        .await;
    assert_eq!(status, 201, "{attributed}");
    // A person's click 40 days ago: the 30 days before the range, for the comparison.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
    let client = linktrace_domain::ClientFacts {
        facts: Some(linktrace_domain::ClickFacts {
            country: "FR".into(),
            visitor: "someone-long-ago".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    env.produce(&linktrace_domain::EventRecord::click(
        account.id,
        "dash1234",
        uuid::Uuid::new_v4(),
        client,
        long_ago,
    ))
    .await;
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 9, Duration::from_secs(20)).await,
        9
    );

    receiver
        .wait_until(Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    failing
        .wait_until(Duration::from_secs(20), |r| !r.is_empty())
        .await;

    let key = account.live_key.as_str();
    let url = sign_in_url(&env, &api, key, "").await;
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page did not finish loading: {dom}"
    );
    // Signed in by the link's session cookie: the page never held the key.
    assert!(!dom.contains(key), "{dom}");
    // The webhooks with their recent deliveries: three delivered (200), and the failing
    // endpoint's attempts waiting for their retry (500).
    for hook in &hooks {
        assert!(
            dom.contains(&format!(r#"data-webhook-id="{hook}""#)),
            "{dom}"
        );
    }
    let delivered = dom
        .matches(r#"<td>purchase</td><td>1</td><td>delivered</td><td>200</td></tr>"#)
        .count();
    assert_eq!(delivered, 3, "{dom}");
    // Which attempt is on show depends on how many retries the failing endpoint has had by
    // the time the page is read (the list holds the latest): any, retrying after a 500.
    assert!(
        dom.contains(r#"<td>retrying</td><td>500</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-short-code="dash1234""#)
            && dom.contains(r#"data-short-code="dash5678""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="clicks"><td>clicks</td><td>2</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="purchase"><td>purchase</td><td>3</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="opens"><td>opens</td><td>1</td></tr>"#),
        "{dom}"
    );
    // Totals against the 30 days before: two people's clicks now, one then.
    for stat in [
        r#"data-stat="clicks" data-current="2" data-previous="1""#,
        r#"data-stat="visitors" data-current="2" data-previous="1""#,
        r#"data-stat="events" data-current="3" data-previous="0""#,
    ] {
        assert!(dom.contains(stat), "{stat} missing: {dom}");
    }
    assert!(dom.contains("+100% vs previous (1)"), "{dom}");
    // The charts are uPlot's (axes, dates, a legend with the numbers on hover), installed
    // by deploy from the npm registry and served by the api; their numbers beside them.
    assert!(
        dom.contains(
            r#"<figure id="clicks" class="chart" data-interval="day" data-drawn-by="uplot">"#
        ) || dom.contains(
            r#"<figure id="clicks" class="chart" data-drawn-by="uplot" data-interval="day">"#
        ),
        "{dom}"
    );
    assert!(dom.contains(r#"class="uplot"#), "{dom}");
    for label in [
        "Clicks",
        "Visitors",
        "Previous period",
        "Installs",
        "Opens",
        "Events",
    ] {
        assert!(
            dom.contains(&format!(r#"<th class="u-label">{label}</th>"#))
                || dom.contains(&format!(r#"class="u-label">{label}<"#)),
            "legend {label}: {dom}"
        );
    }
    assert_eq!(chart_sum(&dom, "clicks", "uniques"), 2, "visitors per day");
    assert_eq!(
        chart_sum(&dom, "clicks", "previous"),
        1,
        "the previous period"
    );
    // Three purchases and the open (an open is an event of its own kind).
    assert_eq!(chart_sum(&dom, "conversions", "events"), 3);
    assert_eq!(chart_sum(&dom, "conversions", "opens"), 1);
    // Installs by how they were matched.
    assert!(
        dom.contains(
            r#"<tr data-match="short_code"><td>deep link (short code)</td><td>1</td></tr>"#
        ) && dom.contains(r#"<tr data-match="organic"><td>organic</td><td>0</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-stat="installs" data-current="1" data-previous="0""#),
        "{dom}"
    );
    // The links table: each link with its clicks in the range.
    assert!(
        dom.contains(r#"data-short-code="dash1234" data-clicks="2""#),
        "{dom}"
    );
    // The click panels: people only, by country, device, OS, browser, referrer and UTM, each
    // row with its clicks and unique visitors.
    for row in [
        r#"<tr data-breakdown="countries" data-value="DE"><td>DE<span class="meter" style="width: 100%;"></span></td><td>1</td><td title="unique visitors (approximate)">1</td></tr>"#,
        r#"<tr data-breakdown="countries" data-value="JP"><td>JP"#,
        r#"<tr data-breakdown="devices" data-value="mobile"><td>mobile"#,
        r#"<tr data-breakdown="devices" data-value="desktop"><td>desktop"#,
        r#"<tr data-breakdown="os" data-value="iOS"><td>iOS"#,
        r#"<tr data-breakdown="browsers" data-value="Firefox"><td>Firefox"#,
        r#"<tr data-breakdown="referrers" data-value=""><td>(direct)"#,
        r#"<tr data-breakdown="utm_sources" data-value="newsletter"><td>newsletter"#,
        r#"<tr data-breakdown="utm_campaigns" data-value="bf"><td>bf"#,
    ] {
        assert!(dom.contains(row), "{row} missing: {dom}");
    }
    assert!(
        !dom.contains(r#"data-value="bot""#),
        "bots are not clicks: {dom}"
    );
    // Revenue of the post-install events, per currency.
    assert!(
        dom.contains(r#"<tr data-currency="EUR"><td>EUR</td><td>12.50</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-currency="USD"><td>USD</td><td>7.00</td></tr>"#),
        "{dom}"
    );
    assert!(
        !dom.contains(r#"data-value="US""#),
        "the crawler's country: {dom}"
    );
    // 30 days per day by default; a range of 24 hours from the fragment is hourly.
    assert!(dom.contains(r#"data-interval="day""#), "{dom}");
    let clicks_per_bar = |dom: &str| chart_sum(dom, "clicks", "count");
    assert_eq!(
        clicks_per_bar(&dom),
        2,
        "the click series counts the two people"
    );
    let url = sign_in_url(&env, &api, key, "#range=1").await;
    let hourly = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(hourly.contains(r#"data-interval="hour""#), "{hourly}");
    assert_eq!(clicks_per_bar(&hourly), 2);
    assert_eq!(hourly.matches(r#"<figure id="clicks""#).count(), 1);
    if let Ok(path) = std::env::var("LINKTRACE_DASHBOARD_SCREENSHOT") {
        let url = sign_in_url(&env, &api, key, "").await;
        tokio::task::spawn_blocking(move || screenshot(&url, &path))
            .await
            .unwrap();
    }

    // One link's own view (a row of the links table opens it; bookmarkable in the fragment).
    let url = sign_in_url(&env, &api, key, "#link=dash5678").await;
    let one = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(
        one.contains(r#"data-stat="clicks" data-current="0" data-previous="0""#),
        "{one}"
    );
    assert!(one.contains(r#"<b id="drill-code">dash5678</b>"#), "{one}");
    assert!(!one.contains(r#"data-breakdown="countries""#), "{one}");
    // The links table searches codes and destinations.
    let url = sign_in_url(&env, &api, key, "#q=5678").await;
    let found = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(found.contains(r#"data-short-code="dash5678""#), "{found}");
    assert!(!found.contains(r#"data-short-code="dash1234""#), "{found}");

    // Without a session: the sign-in form (posted by the browser, read by no script), no data.
    let url = api.url("/dashboard");
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(dom.contains(r#"data-signed-in="false""#), "{dom}");
    assert!(dom.contains(r#"<section id="sign-in">"#), "{dom}");
    assert!(!dom.contains("data-short-code"), "{dom}");
    webhooks.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// Spec, "Links at scale": the dashboard's sign-in exchanges the key, once, for an HttpOnly
/// session cookie. The cookie reads and writes only with the dashboard's header (another
/// site can make a browser send the cookie, never the header); a sign-in link is redeemed
/// once; signing out, or revoking the key, ends the session at once.
#[tokio::test]
async fn a_key_becomes_an_http_only_session_that_ends_with_sign_out_or_its_key() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "sess1234").await;
    let sign_in = |key: &str| {
        env.http
            .post(api.url("/dashboard/sign-in"))
            .form(&[("apiKey", key)])
            .send()
    };
    let wrong = sign_in("lt_live_0000000000000000000000000000000000000000")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let not_a_key = sign_in("hello").await.unwrap();
    assert_eq!(not_a_key.status(), 401);
    // Another site's page posting the form (login CSRF): refused, no cookie.
    let cross_site = env
        .http
        .post(api.url("/dashboard/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("apiKey", account.live_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert!(cross_site.headers().get("set-cookie").is_none());

    let signed_in = sign_in(&account.live_key).await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/dashboard");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["lt_dashboard=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let read = |session: String, with_header: bool| {
        let mut request = env
            .http
            .get(api.url("/api/v1/referral-links"))
            .header("cookie", session);
        if with_header {
            request = request.header("x-linktrace-dashboard", "1");
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(read(session.clone(), true).await, 200);
    assert_eq!(
        read(session.clone(), false).await,
        401,
        "no header, no session"
    );
    // The dashboard can also write with it (a CSV import creates links).
    let created = env
        .http
        .post(api.url("/api/v1/referral-links"))
        .header("cookie", &session)
        .header("x-linktrace-dashboard", "1")
        .json(&serde_json::json!({ "destinationUrl": "https://shop.example/s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // A sign-in link: minted with the key only, redeemed once.
    let (status, _) = env
        .anonymous(&api)
        .create_sign_in_link(serde_json::json!({}))
        .await;
    assert_eq!(status, 401);
    let minted = env
        .http
        .post(api.url("/api/v1/dashboard/sign-in-links"))
        .header("cookie", &session)
        .header("x-linktrace-dashboard", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 401, "a session cannot mint links");
    let (status, link) = env
        .caller(&api, &account.live_key)
        .create_sign_in_link(serde_json::json!({}))
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://links.test/dashboard/sign-in/"),
        "{url}"
    );
    let path = api.url(&url["http://links.test".len()..]);
    let redeemed = env.http.get(&path).send().await.unwrap();
    assert_eq!(redeemed.status(), 303);
    let second = redeemed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(read(second.clone(), true).await, 200);
    assert_eq!(
        env.http.get(&path).send().await.unwrap().status(),
        401,
        "once"
    );

    // Signing out ends that session only.
    let out = env
        .http
        .post(api.url("/dashboard/sign-out"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the cookie is removed"
    );
    assert_eq!(read(session.clone(), true).await, 401);
    assert_eq!(read(second.clone(), true).await, 200);
    // Revoking the key ends every session started with it.
    let revoked = env
        .http
        .post(api.url(&format!("/admin/v1/accounts/{}/keys/revoke", account.id)))
        .bearer_auth(linktrace_integration::ADMIN_TOKEN)
        .json(&serde_json::json!({ "environment": "live" }))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(read(second, true).await, 401);
    api.stop().await.unwrap();
}

/// chromedriver (Debian's, as Chromium) on a free port, stopped on drop.
struct ChromeDriver {
    child: std::process::Child,
    port: u16,
    profile: std::path::PathBuf,
}

impl ChromeDriver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver is installed by deploy/test.sh");
        ChromeDriver {
            child,
            port,
            profile: tempdir(),
        }
    }

    /// A headless Chromium session, driven as a person would drive it.
    async fn browser(&self) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium().expect("chromium is installed by deploy/test.sh"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,1600",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(error) if std::time::Instant::now() > deadline => {
                    panic!("no chromedriver session: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Driven in a real browser as a person would: the key typed into the sign-in form once
/// (after which no page holds it), a CSV of links imported through the file picker, every
/// refused row shown with its line and the API's reason, and a row of the links table
/// opening that link's own view.
#[tokio::test]
async fn in_a_browser_a_typed_key_signs_in_and_a_csv_file_imports_links() {
    use fantoccini::Locator;
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let driver = ChromeDriver::start();
    let browser = driver.browser().await;
    let wait = |css: &'static str| {
        let browser = &browser;
        async move {
            browser
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"))
        }
    };

    browser.goto(&api.url("/dashboard")).await.unwrap();
    let form = wait("body[data-signed-in='false'] #sign-in form").await;
    form.find(Locator::Css("input[name='apiKey']"))
        .await
        .unwrap()
        .send_keys(&account.live_key)
        .await
        .unwrap();
    form.find(Locator::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait("body[data-loaded='true']").await;
    assert!(
        !browser.source().await.unwrap().contains(&account.live_key),
        "the page holds no key once signed in"
    );

    // Two good rows (one with a quoted comma and tags), a bad URL, and a short code taken
    // earlier in the same file.
    let csv = driver.profile.join("links.csv");
    std::fs::write(
        &csv,
        "destinationUrl,shortCode,campaign,tags,title\r\n\
         \"https://shop.example/a?x=1,2\",csv00001,spring,\"email; vip\",\"A, quoted\"\r\n\
         not a url,csv00002,,,\r\n\
         https://shop.example/b,csv00003,,,\r\n\
         https://shop.example/c,csv00001,,,\r\n",
    )
    .unwrap();
    browser
        .find(Locator::Id("import-file"))
        .await
        .unwrap()
        .send_keys(&csv.display().to_string())
        .await
        .unwrap();
    browser
        .find(Locator::Css("#import button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = wait("#import-result[data-created]").await;
    assert_eq!(
        result.attr("data-created").await.unwrap().as_deref(),
        Some("2")
    );
    assert_eq!(
        result.attr("data-failed").await.unwrap().as_deref(),
        Some("2")
    );
    let lines: Vec<String> = {
        let mut lines = Vec::new();
        for row in browser
            .find_all(Locator::Css("#import-result tr.failed"))
            .await
            .unwrap()
        {
            lines.push(row.text().await.unwrap());
        }
        lines
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with('3') && lines[0].contains("destinationUrl"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with('5') && lines[1].contains("short code is already taken"),
        "{lines:?}"
    );
    let stored: Vec<(String, String, Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT short_code, destination_url, tags, title FROM links WHERE account_id = $1 ORDER BY short_code",
    )
    .bind(account.id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        vec![
            (
                "csv00001".into(),
                "https://shop.example/a?x=1,2".into(),
                vec!["email".into(), "vip".into()],
                Some("A, quoted".into())
            ),
            (
                "csv00003".into(),
                "https://shop.example/b".into(),
                vec![],
                None
            ),
        ]
    );

    // The links table lists them; a click on a row opens that link's own view.
    wait("#links tr[data-short-code='csv00003']")
        .await
        .click()
        .await
        .unwrap();
    let drill = wait("#drill:not([hidden]) #drill-code").await;
    assert_eq!(drill.text().await.unwrap(), "csv00003");
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("#link=csv00003"));

    // Signing out: the form again, and the old cookie reads nothing.
    browser
        .find(Locator::Css("#sign-out button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait("body[data-signed-in='false']").await;
    browser.close().await.unwrap();
    api.stop().await.unwrap();
}
