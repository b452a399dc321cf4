use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use linktrace_platform::clickhouse::ClickHouseReadiness;
use linktrace_platform::health::Readiness;
use linktrace_platform::http;
use linktrace_platform::http_metrics::RouteTemplates;
use linktrace_platform::kafka::ObservedContext;
use linktrace_platform::postgres::{self, PostgresReadiness};
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::config::WebhooksConfig;
use crate::delivery::Deliverer;
use crate::dispatcher::Dispatcher;
use crate::intake::Intake;
use crate::metrics::BACKLOG;
use crate::outbox::Outbox;
use crate::settlement::Settlement;
use crate::subscriptions::Subscriptions;
use linktrace_platform::stream_ledger::StreamLedger;

pub struct Application {
    listener: TcpListener,
    router: Router,
    intake: Intake,
    dispatcher: Dispatcher,
    outbox: Outbox,
    retention: Duration,
}

impl Application {
    /// Applies the migrations, joins the group and binds the operational HTTP port.
    pub async fn build(config: WebhooksConfig) -> anyhow::Result<Self> {
        crate::metrics::register();
        let pool = postgres::connect_and_migrate(&config.postgres).await?;
        config.clickhouse.ensure_schema(&pool).await?;
        let consumer: StreamConsumer<ObservedContext> = config
            .kafka
            .group_consumer_config(&config.group_id, &config.instance_id)
            .create_with_context(ObservedContext)?;
        consumer.subscribe(&[&config.kafka.events_topic])?;
        let readiness = Readiness::new()
            .with(Arc::new(PostgresReadiness(pool.clone())))
            .with(Arc::new(ClickHouseReadiness(config.clickhouse.client())));
        let router = http::operational_routes(readiness);
        let outbox = Outbox::new(pool.clone());
        let wake = Arc::new(Notify::new());
        // One view of the webhooks for both halves (each refresh is one query a second).
        let subscriptions = Arc::new(Subscriptions::new(pool.clone()));
        let intake = Intake {
            consumer: Arc::new(consumer),
            topic: config.kafka.events_topic.clone(),
            settlement: Settlement::new(StreamLedger::new(
                pool.clone(),
                &config.kafka.events_topic,
            )),
            subscriptions: subscriptions.clone(),
            outbox: outbox.clone(),
            wake: wake.clone(),
            max_events: 2000,
            max_wait: Duration::from_millis(50),
        };
        let dispatcher = Dispatcher {
            outbox: outbox.clone(),
            deliverer: Arc::new(Deliverer::new(
                &config.delivery,
                config.endpoint_policy.policy(),
            )?),
            delivery: config.delivery,
            retry: config.retry,
            subscriptions,
            wake,
        };
        let listener = TcpListener::bind(config.address).await?;
        Ok(Self {
            listener,
            router,
            intake,
            dispatcher,
            outbox,
            retention: Duration::from_secs(u64::from(config.retention_hours) * 3600),
        })
    }

    pub fn port(&self) -> u16 {
        http::bound_port(&self.listener)
    }

    /// Runs until `shutdown` resolves; then stops taking events, lets attempts in flight
    /// finish (within their timeout) and leaves the group.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "webhook worker running");
        let (stop_sender, stop) = watch::channel(false);
        let server = tokio::spawn(http::serve(
            self.listener,
            self.router,
            RouteTemplates::new(http::OPERATIONAL_PATHS),
            http::NO_BODIES,
            {
                let mut stop = stop.clone();
                async move { linktrace_platform::shutdown::stopped(&mut stop).await }
            },
        ));
        let housekeeping = tokio::spawn(housekeeping(self.outbox, self.retention, stop.clone()));
        let intake = tokio::spawn(self.intake.run(stop.clone()));
        let dispatcher = tokio::spawn(self.dispatcher.run(stop));
        shutdown.await;
        let _ = stop_sender.send(true);
        intake.await?;
        dispatcher.await?;
        housekeeping.abort();
        server.await??;
        tracing::info!("webhook worker stopped");
        Ok(())
    }
}

/// Keeps the backlog gauge current, makes the outbox's coming days and removes finished
/// deliveries past retention.
async fn housekeeping(outbox: Outbox, retention: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = linktrace_platform::shutdown::stopped(&mut stop) => return,
        }
        match outbox.backlog().await {
            Ok(pending) => BACKLOG.set(pending),
            Err(error) => tracing::warn!(%error, "could not count the backlog"),
        }
        // Once an hour (and at start): days ahead made, old days dropped.
        if ticks.is_multiple_of(720) {
            let today = chrono::Utc::now().date_naive();
            if let Err(error) = outbox
                .prepare_days(today - chrono::Days::new(1), today + chrono::Days::new(3))
                .await
            {
                tracing::warn!(%error, "could not make the outbox's coming days");
            }
            match outbox.purge(retention).await {
                Ok(removed) if removed > 0 => tracing::info!(removed, "old deliveries removed"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not remove old deliveries"),
            }
        }
        ticks += 1;
    }
}
