//! What the integration tests share: a fresh, isolated slice of the real infrastructure
//! per test (a Postgres database, a ClickHouse database, Kafka topics — all randomly
//! named), and the real services spawned in-process on random ports.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use envconfig::Envconfig;
use linktrace_api::config::ApiConfig;
use linktrace_consumer::config::ConsumerConfig;
use linktrace_domain::{EventRecord, PlanName};
use linktrace_ingest::config::IngestConfig;
use linktrace_platform::clickhouse::ClickHouseConfig;
use linktrace_platform::kafka::{self, KafkaConfig};
use linktrace_platform::postgres::{self, PostgresConfig};
use linktrace_platform::secret::Secret;
use linktrace_webhooks::config::WebhooksConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub mod caller;
pub mod dns;
pub mod openapi;
pub mod receiver;

pub use caller::{assert_envelope, Caller};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Logs only when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// One test's own slice of the infrastructure.
pub struct TestEnv {
    pub id: String,
    pub pool: PgPool,
    pub postgres_url: String,
    pub clickhouse: ClickHouseConfig,
    pub kafka: KafkaConfig,
    pub http: reqwest::Client,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A fresh, migrated Postgres database of its own, for tests that need nothing else.
pub async fn test_postgres() -> PgPool {
    init_logs();
    let prefix = std::env::var("LINKTRACE_TEST_PREFIX").unwrap_or_else(|_| "local".into());
    let id = format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let server = env_or("TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432");
    postgres::connect_and_migrate(&PostgresConfig {
        url: Secret::new(format!("{server}/lt_test_{id}")),
        max_connections: 20,
    })
    .await
    .expect("Postgres must be running (deploy/up.sh --infra)")
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_partitions(4).await
    }

    pub async fn with_partitions(partitions: i32) -> Self {
        init_logs();
        // Databases are named after this checkout (deploy/test.sh sets the prefix), so a run
        // drops only what this checkout's runs made, never another checkout's.
        let prefix = std::env::var("LINKTRACE_TEST_PREFIX").unwrap_or_else(|_| "local".into());
        let id = format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let server = env_or("TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432");
        let postgres_url = format!("{server}/lt_test_{id}");
        let pool = postgres::connect_and_migrate(&PostgresConfig {
            url: Secret::new(postgres_url.clone()),
            max_connections: 20,
        })
        .await
        .expect("Postgres must be running (deploy/up.sh --infra)");
        let clickhouse = ClickHouseConfig {
            url: env_or("CLICKHOUSE_URL", "http://127.0.0.1:8123"),
            database: format!("lt_test_{id}"),
            user: "default".into(),
            password: Secret::new(""),
            cluster: String::new(),
            shards: String::new(),
        };
        clickhouse
            .ensure_schema(&pool)
            .await
            .expect("ClickHouse must be running (deploy/up.sh --infra)");
        let mut kafka = KafkaConfig::init_from_hashmap(&HashMap::new()).expect("defaults");
        kafka.brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
        // As in production unless the environment says otherwise.
        kafka.producer_idempotent = env_or("KAFKA_PRODUCER_IDEMPOTENT", "true") == "true";
        kafka.events_topic = format!("lt-test-{id}-events");
        kafka.dead_letter_topic = format!("lt-test-{id}-dlq");
        kafka::create_topic(&kafka, &kafka.events_topic, partitions)
            .await
            .expect("Kafka broker must be running");
        kafka::create_topic(&kafka, &kafka.dead_letter_topic, 1)
            .await
            .expect("Kafka broker must be running");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            id,
            pool,
            postgres_url,
            clickhouse,
            kafka,
            http,
        }
    }

    /// The environment variables a service would be started with for this slice.
    pub fn service_env(&self) -> HashMap<String, String> {
        let pairs = [
            ("DATABASE_URL", self.postgres_url.clone()),
            ("DATABASE_MAX_CONNECTIONS", "10".into()),
            ("CLICKHOUSE_URL", self.clickhouse.url.clone()),
            ("CLICKHOUSE_DATABASE", self.clickhouse.database.clone()),
            ("CLICKHOUSE_CLUSTER", self.clickhouse.cluster.clone()),
            ("CLICKHOUSE_SHARDS", self.clickhouse.shards.clone()),
            ("KAFKA_BROKERS", self.kafka.brokers.clone()),
            (
                "KAFKA_PRODUCER_IDEMPOTENT",
                self.kafka.producer_idempotent.to_string(),
            ),
            ("KAFKA_EVENTS_TOPIC", self.kafka.events_topic.clone()),
            (
                "KAFKA_DEAD_LETTER_TOPIC",
                self.kafka.dead_letter_topic.clone(),
            ),
            (
                "KAFKA_CONSUMER_GROUP",
                format!("lt-test-{}-consumer", self.id),
            ),
            ("INGEST_ADDR", "127.0.0.1:0".into()),
            ("API_ADDR", "127.0.0.1:0".into()),
            ("CONSUMER_ADDR", "127.0.0.1:0".into()),
            ("WEBHOOKS_ADDR", "127.0.0.1:0".into()),
            (
                "WEBHOOKS_CONSUMER_GROUP",
                format!("lt-test-{}-webhooks", self.id),
            ),
            // Receivers run on loopback beside the tests, as on deploy/up.sh's machine.
            ("WEBHOOKS_ALLOW_PRIVATE_URLS", "true".into()),
            ("WEBHOOK_TIMEOUT_MS", "3000".into()),
            ("WEBHOOK_RETRY_INITIAL_MS", "200".into()),
            ("WEBHOOK_RETRY_MAX_INTERVAL_MS", "1000".into()),
            ("AUTH_CACHE_TTL_SECS", "1".into()),
            ("NEGATIVE_CACHE_TTL_SECS", "1".into()),
            ("LINK_CACHE_TTL_SECS", "1".into()),
            ("QUOTA_LEASE_IDLE_MS", "300".into()),
            ("CONSUMER_BATCH_MAX_WAIT_MS", "100".into()),
            ("CONSUMER_RETRY_MAX_BACKOFF_MS", "500".into()),
            ("LINKTRACE_ADMIN_TOKEN", ADMIN_TOKEN.into()),
            // Tests send many wrong keys on purpose; the throttle's own test lowers it.
            ("AUTH_FAILURES_PER_MINUTE", "1000000".into()),
            // As ingest's: tests run far faster than a person; the limits' own tests lower them.
            ("API_RATE_LIMIT_PER_SEC", "0".into()),
            ("PUBLIC_BASE_URL", "http://links.test".into()),
            // As the local gateway: loopback is the trusted proxy in front of the api.
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
            ("GEOIP_DATABASE", test_geo_database().display().to_string()),
            // The charting library deploy installed (deploy/test.sh exports where), if any.
            (
                "DASHBOARD_ASSETS_DIR",
                std::env::var("DASHBOARD_ASSETS_DIR").unwrap_or_default(),
            ),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// [`TestEnv::service_env`] with some settings changed.
    pub fn service_env_with(&self, settings: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env = self.service_env();
        for (name, value) in settings {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        env
    }

    pub fn ingest_config(&self) -> IngestConfig {
        IngestConfig::init_from_hashmap(&self.service_env()).expect("ingest config")
    }

    pub fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig::init_from_hashmap(&self.service_env()).expect("consumer config")
    }

    pub fn api_config(&self) -> ApiConfig {
        ApiConfig::init_from_hashmap(&self.service_env()).expect("api config")
    }

    pub async fn spawn_ingest(&self) -> Running {
        self.spawn_ingest_with(&[]).await
    }

    /// An ingest with some settings changed from [`TestEnv::service_env`]'s.
    pub async fn spawn_ingest_with(&self, settings: &[(&str, &str)]) -> Running {
        let config = IngestConfig::init_from_hashmap(&self.service_env_with(settings))
            .expect("ingest config");
        let app = linktrace_ingest::startup::Application::build(config)
            .await
            .expect("ingest starts");
        let port = app.port();
        Running::spawn(port, |stop| app.run_until_stopped(stop))
    }

    pub async fn spawn_consumer(&self) -> Running {
        let app = linktrace_consumer::startup::Application::build(self.consumer_config())
            .await
            .expect("consumer starts");
        let port = app.port();
        Running::spawn(port, |stop| app.run_until_stopped(stop))
    }

    pub async fn spawn_api(&self) -> Running {
        self.spawn_api_with(&[]).await
    }

    /// An api with some settings changed from [`TestEnv::service_env`]'s.
    pub async fn spawn_api_with(&self, settings: &[(&str, &str)]) -> Running {
        let config =
            ApiConfig::init_from_hashmap(&self.service_env_with(settings)).expect("api config");
        let app = linktrace_api::startup::Application::build(config)
            .await
            .expect("api starts");
        let port = app.port();
        Running::spawn(port, |stop| app.run_until_stopped(stop))
    }

    pub fn webhooks_config(&self, settings: &[(&str, &str)]) -> WebhooksConfig {
        WebhooksConfig::init_from_hashmap(&self.service_env_with(settings))
            .expect("webhooks config")
    }

    /// The webhook worker, with some settings changed from [`TestEnv::service_env`]'s.
    pub async fn spawn_webhooks_with(&self, settings: &[(&str, &str)]) -> Running {
        let app = linktrace_webhooks::startup::Application::build(self.webhooks_config(settings))
            .await
            .expect("webhook worker starts");
        let port = app.port();
        Running::spawn(port, |stop| app.run_until_stopped(stop))
    }

    /// An account created by the api's own code (the admin endpoint calls the same).
    pub async fn create_account(&self, plan: &str) -> TestAccount {
        let created =
            linktrace_api::accounts::create(&self.pool, "Test Co", &PlanName::parse(plan).unwrap())
                .await
                .expect("account");
        TestAccount {
            id: created.account_id,
            live_key: created.api_key.expose_secret().to_owned(),
            test_key: created.test_api_key.expose_secret().to_owned(),
        }
    }

    /// A plan with a small quota, as data.
    pub async fn create_plan(&self, name: &str, quota: i64, with_events: bool) {
        let mut endpoints = vec![
            "referral_links.create",
            "referral_links.metadata",
            "attributions.create",
            "capture_event.create",
            "analytics.read",
        ];
        if with_events {
            endpoints.push("events.create");
        }
        sqlx::query(
            "INSERT INTO plans (name, allowed_endpoints, monthly_event_quota) VALUES ($1, $2, $3)",
        )
        .bind(name)
        .bind(endpoints)
        .bind(quota)
        .execute(&self.pool)
        .await
        .expect("plan");
    }

    pub async fn create_link(&self, account: &TestAccount, code: &str) {
        let fields = linktrace_api::links::LinkFields {
            destination_url: "https://example.com/landing".into(),
            ios_url: Some("https://apps.apple.com/app/id1".into()),
            android_url: Some("https://play.google.com/store/apps/details?id=x".into()),
            ..Default::default()
        };
        linktrace_api::links::insert(&self.pool, account.id, code, &fields)
            .await
            .expect("link")
            .expect("code is free");
    }

    /// Rows stored in ClickHouse matching `filter` (an SQL condition written by the test):
    /// a plain `count()`, no `FINAL`, no `uniqExact` — what a dashboard user's own SQL sees.
    pub async fn stored_events(&self, filter: &str) -> u64 {
        self.clickhouse
            .client()
            .query(&format!("SELECT count() FROM events WHERE {filter}"))
            .fetch_one::<u64>()
            .await
            .expect("count")
    }

    /// Events counted by the daily rollup for `filter` (`sum(events)`). The raw table's
    /// merges collapse copies by event id in time; the rollups never do, so a row written
    /// twice shows here for good.
    pub async fn rolled_up_events(&self, filter: &str) -> u64 {
        self.clickhouse
            .client()
            .query(&format!(
                "SELECT toUInt64(sum(events)) FROM event_counts_daily WHERE {filter}"
            ))
            .fetch_one::<u64>()
            .await
            .expect("sum")
    }

    /// Waits until `stored_events(filter) == expected` (then checks it stays there briefly).
    pub async fn wait_for_stored(&self, filter: &str, expected: u64, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.stored_events(filter).await;
            if n >= expected || tokio::time::Instant::now() > deadline {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.stored_events(filter).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn producer(&self) -> FutureProducer {
        self.kafka.producer_config().create().expect("producer")
    }

    /// Puts raw bytes on the events topic, as a misbehaving producer might.
    pub async fn produce_raw(&self, key: &str, payload: &[u8]) {
        self.producer()
            .send(
                FutureRecord::to(&self.kafka.events_topic)
                    .key(key)
                    .payload(payload),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }

    /// The first `n` messages on `topic`, read from its start by a consumer group of their
    /// own (so any number of readers, in any test, each see them all).
    pub async fn read_topic(&self, topic: &str, n: usize) -> Vec<OwnedMessage> {
        let reader: StreamConsumer = self
            .kafka
            .client_config()
            .set(
                "group.id",
                format!("lt-test-{}-reader-{}", self.id, Uuid::new_v4()),
            )
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("reader");
        reader.subscribe(&[topic]).expect("subscribe");
        let mut messages = Vec::with_capacity(n);
        while messages.len() < n {
            let message = tokio::time::timeout(Duration::from_secs(20), reader.recv())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} messages on {topic}", messages.len()))
                .expect("a message");
            messages.push(message.detach());
        }
        messages
    }

    pub async fn produce(&self, record: &EventRecord) {
        self.produce_raw(&record.partition_key(), &record.to_json())
            .await;
    }

    /// Puts `records` on the events topic at once, as ingest instances would (one producer,
    /// every send in flight together).
    pub async fn produce_all(&self, records: &[EventRecord]) {
        let producer = self.producer();
        let sends = records.iter().map(|r| {
            let payload = r.to_json();
            let key = r.partition_key().into_owned();
            let producer = producer.clone();
            let topic = self.kafka.events_topic.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&payload),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("produce");
            }
        });
        futures::future::join_all(sends).await;
    }

    /// POST `body` to a whole URL, with `key` as `x-api-key` when given (for URLs no
    /// [`Caller`] method names).
    pub async fn post(&self, url: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        caller::answer(with_key(self.http.post(url).json(&body), key)).await
    }

    /// GET a whole URL, with `key` as `x-api-key` when given.
    pub async fn get(&self, url: &str, key: Option<&str>) -> (u16, Value) {
        caller::answer(with_key(self.http.get(url), key)).await
    }
}

fn with_key(request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.header("x-api-key", key),
        None => request,
    }
}

#[derive(Debug, Clone)]
pub struct TestAccount {
    pub id: Uuid,
    pub live_key: String,
    pub test_key: String,
}

/// A service running in this process.
pub struct Running {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `run` (an app's `run_until_stopped`) in the background.
    pub fn spawn<F, Fut>(port: u16, run: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let signal: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let _ = stopped.await;
        });
        let handle = tokio::spawn(run(signal));
        Self {
            port,
            stop: Some(stop),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Graceful stop (as on SIGTERM), waiting for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await?
    }
}

/// A service's binary (`linktrace-<name>`, debug build), built if needed, so that a test
/// can run it as a process of its own and kill it with SIGKILL.
pub fn service_binary(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let package = format!("linktrace-{name}");
    let status = std::process::Command::new(env!("CARGO"))
        // The whole workspace, as `cargo test --workspace` builds it: the same features, no rebuild.
        .args(["build", "-q", "--workspace", "--bin", &package])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug").join(package)
}

/// An event body for `POST /api/v1/events`.
pub fn event(code: &str, name: &str, entity: Option<&str>) -> Value {
    let mut body = json!({ "linkShortCode": code, "eventName": name });
    if let Some(entity) = entity {
        body["entityId"] = entity.into();
    }
    body
}

pub use linktrace_platform::clock::ManualClock;

/// The networks of the test geo database and where it puts them: documentation ranges
/// (RFC 5737), in both layouts the api reads (MaxMind's nested one and ip-location-db's flat one).
pub const TEST_GEO: &[(&str, &str, &str)] = &[
    ("198.51.100.0/24", "DE", "Berlin"),
    ("203.0.113.0/24", "JP", ""),
    ("192.0.2.0/24", "US", "Boston"),
];

/// A tiny MaxMind-format database the tests build themselves (written once per process).
pub fn test_geo_database() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        #[derive(serde::Serialize)]
        struct Flat<'a> {
            country_code: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Nested<'a> {
            country: std::collections::BTreeMap<&'a str, &'a str>,
            city: std::collections::BTreeMap<&'a str, std::collections::BTreeMap<&'a str, &'a str>>,
        }
        let mut writer = mmdb_writer::Writer::new("LinkTrace-Test-Geo");
        for (network, country, city) in TEST_GEO {
            let network: ipnet::IpNet = network.parse().expect("a network");
            if city.is_empty() {
                writer
                    .insert(
                        network,
                        &Flat {
                            country_code: country,
                        },
                    )
                    .expect("insert");
            } else {
                let nested = Nested {
                    country: [("iso_code", *country)].into(),
                    city: [("names", [("en", *city)].into())].into(),
                };
                writer.insert(network, &nested).expect("insert");
            }
        }
        let path =
            std::env::temp_dir().join(format!("linktrace-test-geo-{}.mmdb", std::process::id()));
        std::fs::write(&path, writer.to_bytes().expect("mmdb"))
            .expect("write the test geo database");
        path
    })
    .clone()
}

/// The real gateway (nginx, `deploy/nginx/gateway.conf.template` as `deploy/up.sh` fills it
/// in) in front of an ingest and an api, on a port of its own; stopped when dropped.
pub struct Gateway {
    pub port: u16,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Gateway {
    /// Starts nginx with the gateway's routes, reaching the services from `proxy_bind`.
    pub async fn start(ingest_port: u16, api_port: u16, proxy_bind: &str) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("linktrace-gateway-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let routes = std::fs::read_to_string(root.join("deploy/nginx/gateway.conf.template"))
            .unwrap()
            .replace("${LT_INGEST_UPSTREAM}", &format!("127.0.0.1:{ingest_port}"))
            .replace("${LT_API_UPSTREAM}", &format!("127.0.0.1:{api_port}"))
            .replace("${LT_GATEWAY_LISTEN}", &format!("127.0.0.1:{port}"))
            .replace("${LT_PROXY_BIND}", proxy_bind);
        std::fs::write(dir.join("gateway.conf"), routes).unwrap();
        let main = std::fs::read_to_string(root.join("deploy/nginx/local.conf"))
            .unwrap()
            .replace("@STATE@", &dir.display().to_string())
            .replace("@RUN@", &dir.display().to_string())
            .replace("daemon on;", "daemon off;");
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("nginx (deploy/up.sh --infra installs it)");
        let gateway = Self { port, child, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start: see {}", gateway.dir.display());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
