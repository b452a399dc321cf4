//! The dashboard page in a real headless browser (Debian's Chromium): it loads the
//! account's links, funnel and series through the public API and shows them.

use std::process::Command;
use std::time::Duration;

use linktrace_integration::{event, TestEnv};

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The page's DOM after its scripts ran.
fn render(url: &str) -> String {
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
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lt-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_dashboard_shows_links_funnel_and_series_for_the_pasted_key() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "dash1234").await;
    env.create_link(&account, "dash5678").await;
    for _ in 0..2 {
        env.http.get(api.url("/l/dash1234")).send().await.unwrap();
    }
    for order in ["a", "b", "c"] {
        env.post(
            &ingest.url("/api/v1/events"),
            Some(&account.live_key),
            event("dash1234", "purchase", Some(order)),
        )
        .await;
    }
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 5, Duration::from_secs(20)).await,
        5
    );

    let url = api.url(&format!("/dashboard#key={}", account.live_key));
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page did not finish loading: {dom}"
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
        dom.contains(r#"class="bar""#) && dom.contains(r#"data-count="5""#),
        "{dom}"
    );

    // A wrong key shows the API's message and no data.
    let url = api.url("/dashboard#key=lt_live_0000000000000000000000000000000000000000");
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(dom.contains("missing or invalid API key"), "{dom}");
    assert!(!dom.contains("data-short-code"), "{dom}");
    consumer.stop().await.unwrap();
}
