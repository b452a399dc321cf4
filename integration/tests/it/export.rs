//! `GET /api/v1/events/export` against the real stack: what it streams, in both formats, its
//! scope and parameters, and that the api's memory stays flat for an export far larger than
//! the memory it is allowed.

use std::time::Duration;

use linktrace_integration::{event, TestEnv};
use serde_json::{json, Value};

#[tokio::test]
async fn exports_the_accounts_events_as_ndjson_and_csv() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "expo1234").await;
    let mut purchase = event("expo1234", "purchase", Some("order-1"));
    purchase["revenue"] = json!({ "amount": 12.5, "currency": "EUR" });
    purchase["properties"] = json!({ "sku": "a,\"b\"" });
    for body in [purchase, event("expo1234", "signup", None)] {
        let (status, _) = env
            .caller(&ingest, &account.live_key)
            .send_event(body)
            .await;
        assert_eq!(status, 202);
    }
    let click = env
        .http
        .get(api.url("/l/expo1234?utm_source=news"))
        .header(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 3, Duration::from_secs(20)).await,
        3
    );

    let export = |query: &'static str, key: String| {
        let (env, api) = (&env, &api);
        async move {
            let response = env
                .http
                .get(api.url(&format!("/api/v1/events/export?{query}")))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, response.text().await.unwrap())
        }
    };
    let key = account.live_key.clone();
    let (status, content_type, text) = export("", key.clone()).await;
    assert_eq!(
        (status, content_type.as_deref()),
        (200, Some("application/x-ndjson"))
    );
    let rows: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["event_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    for name in ["purchase", "signup", "click"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let purchase = rows.iter().find(|r| r["event_name"] == "purchase").unwrap();
    assert_eq!(purchase["revenue_currency"], "EUR");
    assert_eq!(purchase["revenue_amount"], 12.5);
    assert_eq!(purchase["entity_id"], "order-1");
    assert_eq!(purchase["link_short_code"], "expo1234");
    assert!(purchase["event_time"].as_str().unwrap().ends_with('Z'));
    let click = rows.iter().find(|r| r["event_name"] == "click").unwrap();
    assert_eq!(
        (
            click["utm_source"].as_str(),
            click["browser"].as_str(),
            click["device"].as_str()
        ),
        (Some("news"), Some("Firefox"), Some("desktop"))
    );

    let (status, content_type, csv) = export("format=csv&event=purchase", key.clone()).await;
    assert_eq!(
        (status, content_type.as_deref()),
        (200, Some("text/csv; charset=utf-8"))
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with(r#""event_id","event_name","link_short_code","event_time""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""purchase","expo1234""#) && lines[1].contains(r#""EUR",12.5"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#""{""sku"":""a,\""b\""""}""#) || lines[1].contains("sku"),
        "{}",
        lines[1]
    );

    // The key's environment and account only.
    assert_eq!(export("", account.test_key.clone()).await.2, "");
    let other = env.create_account("scale").await;
    assert_eq!(export("", other.live_key.clone()).await.2, "");
    // Parameters.
    for (query, field) in [
        ("format=xml", "format"),
        ("from=2026-01-01&to=2026-03-01", "from"),
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("event=no-such!", "event"),
        ("since=2026-01-01", "since"),
    ] {
        let (status, _, text) = export(query, key.clone()).await;
        assert_eq!(status, 400, "{query}: {text}");
        let envelope: Value = serde_json::from_str(&text).unwrap();
        assert!(
            envelope["message"].as_str().unwrap().contains(field),
            "{query}: {text}"
        );
    }
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

/// The process's resident memory, in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn an_export_larger_than_the_memory_allowed_streams_in_flat_memory() {
    /// What the export may add to this process (api and test client together).
    const ALLOWED_KIB: u64 = 48 * 1024;
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    // 600,000 stored events of ~500 bytes each, written straight into ClickHouse.
    let blob = format!("{{\"note\":\"{}\"}}", "x".repeat(420));
    let insert = format!(
        "INSERT INTO events (event_id, account_id, environment, link_short_code, event_name, properties, source, event_time, event_time_ms, received_at) \
         SELECT toString(number), '{}', 'production', 'bulk1234', 'purchase', '{blob}', 'api', \
                toDateTime(now() - 60 - number % 3600) AS t, toUInt64(toUInt32(t)) * 1000, t \
           FROM system.numbers LIMIT 600000",
        account.id
    );
    env.clickhouse
        .client()
        .query(&insert)
        .execute()
        .await
        .unwrap();

    let before = resident_kib();
    let response = env
        .http
        .get(api.url("/api/v1/events/export?format=ndjson"))
        .header("x-api-key", &account.live_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines, mut peak, mut since_sample) = (0u64, 0u64, before, 0u64);
    let mut response = response;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        since_sample += chunk.len() as u64;
        if since_sample >= 1 << 20 {
            since_sample = 0;
            peak = peak.max(resident_kib());
        }
    }
    assert_eq!(lines, 600_000);
    assert!(
        bytes > 5 * ALLOWED_KIB * 1024,
        "the export ({bytes} bytes) is far larger than the memory allowed"
    );
    let grown = peak.saturating_sub(before);
    eprintln!("exported {bytes} bytes ({lines} rows); resident memory grew by {grown} KiB at most");
    assert!(
        grown < ALLOWED_KIB,
        "resident memory grew by {grown} KiB while streaming {bytes} bytes"
    );
    api.stop().await.unwrap();
}

/// A CSV export is safe to open in a spreadsheet: a text cell a visitor or client wrote that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading `'`;
/// numeric columns stay numbers; NDJSON is unchanged. Before the fix a user agent
/// `=cmd|' /C calc'!A0` and `utm_source==HYPERLINK(…)` were exported verbatim.
#[tokio::test]
async fn csv_exports_neutralise_spreadsheet_formulas() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "csvf1234").await;
    let click = env
        .http
        .get(api.url("/l/csvf1234?utm_source=%3DHYPERLINK(%22http://x%22)&utm_medium=%2Bsum&utm_campaign=-1&utm_term=%40me"))
        .header("user-agent", "=cmd|' /C calc'!A0")
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 1, Duration::from_secs(20)).await,
        1
    );
    let export = |format: &'static str| {
        let (env, api, key) = (&env, &api, account.live_key.clone());
        async move {
            env.http
                .get(api.url(&format!("/api/v1/events/export?format={format}")))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let csv = export("csv").await;
    let row = csv.lines().nth(1).expect("one row");
    for guarded in [
        r#""'=cmd|' /C calc'!A0""#,
        r#""'=HYPERLINK(""http://x"")""#,
        r#""'+sum""#,
        r#""'-1""#,
        r#""'@me""#,
    ] {
        assert!(row.contains(guarded), "{guarded} in {row}");
    }
    assert!(
        row.ends_with(&format!(",{}", "0,\"\"")) || row.contains(",0,"),
        "bot stays a number: {row}"
    );
    let ndjson: Value =
        serde_json::from_str(export("ndjson").await.lines().next().unwrap()).unwrap();
    assert_eq!(ndjson["user_agent"], "=cmd|' /C calc'!A0");
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}
