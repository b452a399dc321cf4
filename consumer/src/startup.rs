use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use linktrace_platform::clickhouse::{ClickHouseConfig, ClickHouseReadiness};
use linktrace_platform::health::Readiness;
use linktrace_platform::http;
use linktrace_platform::http_metrics::RouteTemplates;
use linktrace_platform::kafka::{KafkaReadiness, KafkaSink, ObservedContext};
use linktrace_platform::postgres::{self, PostgresReadiness};
use linktrace_platform::stream_ledger::StreamLedger;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::net::TcpListener;

use crate::config::ConsumerConfig;
use crate::pipeline::{BatchLimits, FaultHook, Pipeline};
use crate::recent::RecentEvents;
use crate::reconcile::{Reconciler, RollupChecks};
use crate::stored::StoredEntities;
use crate::writer::{ClickHouseWriter, EventWriter};

pub struct Application {
    listener: TcpListener,
    router: Router,
    pipeline: Pipeline,
    reconciler: Reconciler,
    reconcile_every: Duration,
}

impl Application {
    /// Applies the ClickHouse and Postgres migrations, joins the consumer group and binds
    /// the operational HTTP port.
    pub async fn build(config: ConsumerConfig) -> anyhow::Result<Self> {
        let writer = Arc::new(
            ClickHouseWriter::new(config.clickhouse.writer_client(), config.write_timeout())
                .with_shards(config.clickhouse.shard_writer_clients()),
        );
        Self::build_with(&config, writer).await
    }

    /// As [`Self::build`], writing through `writer` (tests use this to make writes fail).
    pub async fn build_with(
        config: &ConsumerConfig,
        writer: Arc<dyn EventWriter>,
    ) -> anyhow::Result<Self> {
        crate::metrics::register();
        let pool = postgres::connect_and_migrate(&config.postgres).await?;
        config.clickhouse.ensure_schema(&pool).await?;
        let consumer: StreamConsumer<ObservedContext> = config
            .kafka
            .group_consumer_config(&config.group_id, &config.instance_id)
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set("max.poll.interval.ms", "300000")
            .set("fetch.min.bytes", config.fetch_min_bytes.to_string())
            .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
            .set(
                "max.partition.fetch.bytes",
                config.max_partition_fetch_bytes.to_string(),
            )
            .set(
                "queued.min.messages",
                config.queued_min_messages.to_string(),
            )
            .create_with_context(ObservedContext)?;
        consumer.subscribe(&[&config.kafka.events_topic])?;
        let dead_letters = KafkaSink::for_topic(&config.kafka, &config.kafka.dead_letter_topic)?;
        let readiness = Readiness::new()
            .with(Arc::new(PostgresReadiness(pool.clone())))
            .with(Arc::new(ClickHouseReadiness(config.clickhouse.client())))
            .with(Arc::new(KafkaReadiness::new(&dead_letters)));
        let router = http::operational_routes(readiness);
        let pipeline = Pipeline {
            consumer: Arc::new(consumer),
            kafka: config.kafka.clone(),
            topic: config.kafka.events_topic.clone(),
            writer,
            ledger: StreamLedger::new(pool.clone(), &config.kafka.events_topic),
            owner: format!(
                "{}/{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
                std::process::id()
            ),
            leases: Default::default(),
            write_deadline: config.write_deadline(),
            stored: StoredEntities::new(pool.clone()),
            recent: RecentEvents::new(config.recent_event_window),
            dead_letters,
            limits: BatchLimits {
                max_events: config.batch_max_events.max(1),
                max_wait: Duration::from_millis(config.batch_max_wait_ms),
                max_backoff: Duration::from_millis(config.retry_max_backoff_ms),
            },
            fault: FaultHook {
                hold_before_commit: Some(&config.fault_hold_before_commit)
                    .filter(|path| !path.is_empty())
                    .map(Into::into),
            },
            rollup_checks: RollupChecks::new(pool.clone()),
        };
        let reconciler = Reconciler {
            checks: RollupChecks::new(pool),
            shards: reconciled_servers(&config.clickhouse),
            database: config.clickhouse.database.clone(),
            settle: config.reconcile_settle(),
        };
        let listener = TcpListener::bind(config.address).await?;
        Ok(Self {
            listener,
            router,
            pipeline,
            reconciler,
            reconcile_every: Duration::from_secs(config.reconcile_every_secs.max(1)),
        })
    }

    pub fn port(&self) -> u16 {
        http::bound_port(&self.listener)
    }

    /// Consumes until `shutdown` resolves, then flushes, commits and leaves the group.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "consumer running");
        let sweep = spawn_skip_sweep(self.pipeline.ledger.clone());
        let reconciler = self.reconciler.spawn(self.reconcile_every);
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(
            self.listener,
            self.router,
            RouteTemplates::new(http::OPERATIONAL_PATHS),
            http::NO_BODIES,
            async move {
                let _ = stopped.await;
            },
        ));
        self.pipeline.run(shutdown).await;
        sweep.abort();
        reconciler.abort();
        let _ = stop_server.send(());
        server.await??;
        tracing::info!("consumer stopped");
        Ok(())
    }
}

/// The servers the reconciler compares rollups on: the first replica of each shard (cluster
/// mode with `CLICKHOUSE_SHARDS`: each shard rolls up its own rows), or the one server.
fn reconciled_servers(clickhouse: &ClickHouseConfig) -> Vec<clickhouse::Client> {
    let shards = clickhouse.shard_writer_clients();
    if shards.is_empty() {
        return vec![clickhouse.client()];
    }
    shards
        .into_iter()
        .filter_map(|replicas| replicas.into_iter().next())
        .collect()
}

/// How long the stream ledger keeps the offsets it skipped: the webhook worker reads them
/// only for events it has in hand, which is seconds behind storage (days after an outage).
pub const SKIPS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Forgets skipped offsets older than [`SKIPS_KEPT`], every ten minutes (every instance:
/// the statement is cheap and idempotent).
fn spawn_skip_sweep(ledger: StreamLedger) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            match ledger.forget_skips_older_than(SKIPS_KEPT).await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "forgot old skipped offsets"),
                Err(error) => tracing::warn!(%error, "could not forget old skipped offsets"),
            }
        }
    })
}
