//! Revenue on conversions against the real stack: `properties` and `revenue` on `/events`
//! and the batch endpoint, `event_data.amount`/`currency` on capture-event, stored as
//! columns, summed per currency by `GET /api/v1/analytics`, and entity dedup kept.

use std::time::Duration;

use linktrace_integration::{event, TestEnv};
use serde_json::{json, Value};

fn purchase(code: &str, order: &str, amount: Value, currency: &str) -> Value {
    let mut body = event(code, "purchase", Some(order));
    body["revenue"] = json!({ "amount": amount, "currency": currency });
    body["properties"] = json!({ "sku": "shoe-42", "coupon": null });
    body
}

#[tokio::test]
async fn revenue_is_stored_as_columns_and_summed_per_currency() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "shop1234").await;
    env.create_link(&account, "shop5678").await;

    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_event(purchase("shop1234", "o-1", json!(12.5), "eur"))
        .await;
    assert_eq!(status, 202, "{body}");
    // The same order again: deduplicated, its revenue not counted twice.
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_event(purchase("shop1234", "o-1", json!(12.5), "EUR"))
        .await;
    assert_eq!(
        (status, &body["deduplicated"]),
        (200, &json!(true)),
        "{body}"
    );
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(purchase("shop1234", "o-2", json!(0.1), "EUR"))
        .await;
    assert_eq!(status, 202);
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(purchase("shop5678", "o-3", json!(-3.99), "USD"))
        .await;
    assert_eq!(status, 202, "a refund is a negative amount");
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_events(json!({ "events": [
            purchase("shop5678", "o-4", json!(20), "USD"),
            purchase("shop5678", "o-5", json!(1), "NOPE"),
            event("shop5678", "signup", None),
        ]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 400, 202], "{body}");
    sqlx::query("INSERT INTO attributions (account_id, user_id, short_code, match_type) VALUES ($1, 'buyer', 'shop1234', 'short_code')")
        .bind(account.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let response = env
        .http
        .post(ingest.url("/api/v1/capture-event"))
        .header("linkrunner-key", &account.live_key)
        .json(&json!({ "event_name": "purchase", "user_id": "buyer", "event_data": { "amount": 100, "currency": "INR", "plan": "gold" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 6, Duration::from_secs(20)).await,
        6
    );
    let stored = |filter: &'static str| {
        let (env, condition) = (&env, format!("{all} AND {filter}"));
        async move { env.stored_events(&condition).await }
    };
    assert_eq!(stored("revenue_currency = 'EUR' AND revenue_micros = 12500000 AND properties LIKE '%\"sku\":\"shoe-42\"%'").await, 1);
    assert_eq!(
        stored("revenue_currency = 'USD' AND revenue_micros = -3990000").await,
        1
    );
    assert_eq!(
        stored("revenue_currency = 'INR' AND revenue_micros = 100000000 AND source = 'capture'")
            .await,
        1
    );
    assert_eq!(
        stored("event_name = 'signup' AND revenue_currency = ''").await,
        1
    );

    let analytics = |query: &'static str| {
        let (env, api, key) = (&env, &api, account.live_key.clone());
        async move {
            let (status, body) = env.caller(api, &key).analytics(query).await;
            assert_eq!(status, 200, "{body}");
            body["data"].clone()
        }
    };
    assert_eq!(
        analytics("event=purchase").await,
        json!([{ "count": 5, "revenue": { "EUR": 12.6, "INR": 100.0, "USD": 16.01 }, "uniques": 1, "uniquesApproximate": true }])
    );
    assert_eq!(
        analytics("event=purchase&groupBy=links").await,
        json!([
            { "shortCode": "shop1234", "count": 3, "revenue": { "EUR": 12.6, "INR": 100.0 }, "uniques": 1, "uniquesApproximate": true },
            // Those two purchases name no user: no one to count as a unique.
            { "shortCode": "shop5678", "count": 2, "revenue": { "USD": 16.01 }, "uniques": 0, "uniquesApproximate": true },
        ])
    );
    // Events without revenue carry none (nor, without a user, uniques).
    assert_eq!(
        analytics("event=signup").await,
        json!([{ "count": 1, "uniques": 0, "uniquesApproximate": true }])
    );
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn bad_revenue_and_properties_get_a_400_naming_the_field() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "shop1234").await;
    let events = ingest.url("/api/v1/events");
    let mut too_big = event("shop1234", "purchase", None);
    too_big["properties"] = json!({ "blob": "x".repeat(17 * 1024) });
    let mut not_an_object = event("shop1234", "purchase", None);
    not_an_object["properties"] = json!(["a"]);
    for (body, field) in [
        (
            purchase("shop1234", "o", json!(1), "EURO"),
            "revenue.currency",
        ),
        (
            purchase("shop1234", "o", json!(1), "XXY"),
            "revenue.currency",
        ),
        (
            purchase("shop1234", "o", json!("12.50"), "EUR"),
            "revenue.amount",
        ),
        (purchase("shop1234", "o", json!(1e13), "EUR"), "revenue"),
        (
            json!({ "linkShortCode": "shop1234", "eventName": "purchase", "revenue": { "amount": 1 } }),
            "revenue",
        ),
        (too_big, "properties"),
        (not_an_object, "properties"),
    ] {
        let (status, answer) = env
            .caller(&ingest, &account.live_key)
            .send_event(body.clone())
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["success"], false);
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }
    // A non-finite amount cannot be written in JSON; the nearest thing is refused too.
    let response = env
        .http
        .post(&events)
        .header("x-api-key", &account.live_key)
        .header("content-type", "application/json")
        .body(r#"{"linkShortCode":"shop1234","eventName":"purchase","revenue":{"amount":1e400,"currency":"EUR"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// `event_data` is free-form in the fixed contract: Linkrunner's own documented examples
/// (as they are written there) are accepted with 201 and stored with `event_data` as their
/// properties; a `currency` beside a `price` or `total_amount` is not revenue. Before the
/// fix both answered 400 "event_data.amount must be a number when event_data.currency is
/// given", and the event was lost.
#[tokio::test]
async fn capture_event_takes_linkrunners_documented_examples() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    let examples = [
        json!({
            "product_id": "ABC123",
            "category": "electronics",
            "price": 249.99,
            "currency": "USD",
            "is_featured": true
        }),
        json!({
            "order_id": "ORD-12345",
            "product_ids": ["ABC123", "DEF456"],
            "total_amount": 125.99,
            "currency": "USD",
            "payment_method": "credit_card"
        }),
        // Not a valid pair either: stored, without revenue.
        json!({ "amount": 5 }),
        json!({ "currency": "EUR" }),
        json!({ "amount": 5, "currency": "EURO" }),
        json!({ "amount": "5", "currency": "EUR" }),
    ];
    for (n, data) in examples.iter().enumerate() {
        let response = env
            .http
            .post(ingest.url("/api/v1/capture-event"))
            .header("linkrunner-key", &account.live_key)
            .json(&json!({ "event_name": "purchase", "user_id": format!("u{n}"), "event_data": data }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{data}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "msg": "Event capture request received!", "status": 200, "data": null })
        );
    }
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, examples.len() as u64, Duration::from_secs(20))
            .await,
        examples.len() as u64
    );
    assert_eq!(
        env.stored_events(&format!(
            "{all} AND revenue_currency = '' AND revenue_micros = 0"
        ))
        .await,
        examples.len() as u64,
        "none of them carries revenue"
    );
    for (n, data) in examples.iter().enumerate() {
        let stored: String = env
            .clickhouse
            .client()
            .query(&format!(
                "SELECT properties FROM events WHERE {all} AND user_id = 'u{n}'"
            ))
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), *data);
    }
    consumer.stop().await.unwrap();
}

/// Revenue sums never wrap: ten amounts of 1e12 (the largest accepted) in one batch, and
/// one more cent, sum to exactly 10,000,000,000,000.01 — in the rollup a dashboard user's
/// own SQL reads, and in the analytics answer, written out exactly. Before the fix the
/// rollup's Int64 micros wrapped and analytics showed -8446744073709.552.
#[tokio::test]
async fn revenue_sums_are_exact_beyond_int64_micros() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "shop1234").await;
    let mut events: Vec<Value> = (0..10)
        .map(|n| purchase("shop1234", &format!("big-{n}"), json!(1e12), "USD"))
        .collect();
    events.push(purchase("shop1234", "small", json!(0.01), "USD"));
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_events(json!({ "events": events }))
        .await;
    assert_eq!((status, &body["queued"]), (200, &json!(11)), "{body}");
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 11, Duration::from_secs(20)).await,
        11
    );
    let rolled_up: String = env
        .clickhouse
        .client()
        .query(&format!(
            "SELECT toString(sum(revenue_micros)) FROM event_counts_daily WHERE {all}"
        ))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rolled_up, "10000000000000010000");
    let response = env
        .http
        .get(api.url("/api/v1/analytics?event=purchase"))
        .header("x-api-key", &account.live_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#""revenue":{"USD":10000000000000.01}"#),
        "{text}"
    );
    let by_link = env
        .caller(&api, &account.live_key)
        .analytics("event=purchase&groupBy=links")
        .await
        .1;
    assert_eq!(by_link["data"][0]["count"], 11, "{by_link}");
    assert!(by_link["data"][0]["revenue"]["USD"].as_f64().unwrap() > 0.0);
    api.stop().await.unwrap();
    consumer.stop().await.unwrap();
}
