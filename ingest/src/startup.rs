//! Building the ingest application from its configuration and dependencies, and running it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use linktrace_platform::clock::{Clock, SystemClock};
use linktrace_platform::failed_auth::FailedAuthentications;
use linktrace_platform::health::Readiness;
use linktrace_platform::http;
use linktrace_platform::http_metrics::RouteTemplates;
use linktrace_platform::invalidation;
use linktrace_platform::kafka::{EventSink, KafkaReadiness, KafkaSink};
use linktrace_platform::keys::KeyDirectory;
use linktrace_platform::postgres::{self, PostgresReadiness};
use sqlx::PgPool;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

use crate::claims::EntityClaims;
use crate::config::IngestConfig;
use crate::directory::{Directory, DirectoryTtls};
use crate::idempotency::IdempotencyStore;
use crate::intake::Intake;
use crate::quota::QuotaLimiter;
use crate::routes;
use linktrace_platform::rate_limit::KeyRateLimiter;

/// How ingest's Postgres sessions start: statements planned for their parameters at every
/// run. The entity claims' table grows from empty, and a plan Postgres cached for all runs
/// (a generic plan) made while it was small scans it whole (see `claims`). Ingest's other
/// statements are key look-ups behind caches.
pub const POSTGRES_SETTINGS: &[(&str, &str)] = &[("plan_cache_mode", "force_custom_plan")];

/// What ingest needs from the outside world; tests swap the sink or the clock.
pub struct Dependencies {
    pub pool: PgPool,
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub readiness: Readiness,
}

impl Dependencies {
    /// The real ones: Postgres (migrated) and the Kafka producer.
    pub async fn connect(config: &IngestConfig) -> anyhow::Result<Self> {
        let pool = postgres::connect_and_migrate_with(&config.postgres, POSTGRES_SETTINGS).await?;
        let sink = Arc::new(KafkaSink::new(&config.kafka)?);
        let readiness = Readiness::new()
            .with(Arc::new(PostgresReadiness(pool.clone())))
            .with(Arc::new(KafkaReadiness::new(&sink)));
        Ok(Self {
            pool,
            sink,
            clock: Arc::new(SystemClock),
            readiness,
        })
    }
}

pub fn build_router(
    intake: Arc<Intake>,
    failures: Arc<FailedAuthentications>,
    readiness: Readiness,
) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
        // Every public route takes an `Idempotency-Key` (`idempotency`).
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&intake),
            crate::idempotency::layer,
        ))
        // Failed authentication is throttled per address, before anything else.
        .route_layer(axum::middleware::from_fn_with_state(
            failures,
            linktrace_platform::failed_auth::layer,
        ))
        .method_not_allowed_fallback(http::method_not_allowed)
        .with_state(intake)
        .merge(http::operational_routes(readiness))
        .fallback(http::not_found)
}

/// The templates of every route [`build_router`] serves, for the request metrics.
pub fn route_templates() -> RouteTemplates {
    RouteTemplates::documented(&openapi(), http::OPERATIONAL_PATHS)
}

/// Ingest's public routes, each with its OpenAPI description (`openapi()` takes the
/// description, `build_router` the routes).
fn routes() -> OpenApiRouter<Arc<Intake>> {
    // The single-event routes read at most `MAX_BODY_BYTES` (`http::serve`'s limit); the
    // batch route more.
    let single = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(routes::events::create))
        .routes(utoipa_axum::routes!(routes::capture::create));
    let batch = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(routes::batch::create))
        .layer(DefaultBodyLimit::max(routes::batch::MAX_BODY_BYTES));
    single.merge(batch)
}

/// The OpenAPI description of ingest's public routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// Forgets idempotency keys past their window, every ten minutes (every instance: the
/// statement is cheap and idempotent).
fn spawn_idempotency_sweep(store: Arc<IdempotencyStore>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(error) = store.sweep().await {
                tracing::warn!(%error, "could not sweep old idempotency keys");
            }
        }
    });
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    max_body_bytes: usize,
    quota: Arc<QuotaLimiter>,
    /// Change notifications for the caches, for as long as the service runs.
    _listening: invalidation::Listening,
}

impl Application {
    pub async fn build(config: IngestConfig) -> anyhow::Result<Self> {
        let dependencies = Dependencies::connect(&config).await?;
        Self::build_with(&config, dependencies).await
    }

    pub async fn build_with(config: &IngestConfig, deps: Dependencies) -> anyhow::Result<Self> {
        crate::metrics::register();
        let ttls = DirectoryTtls {
            links: Duration::from_secs(config.link_cache_ttl_secs),
            negative: Duration::from_secs(config.lookup_cache.negative_ttl_secs),
        };
        let quota = Arc::new(QuotaLimiter::new(
            deps.pool.clone(),
            config.quota_lease_block,
            Duration::from_millis(config.quota_lease_idle_ms),
        ));
        // A claim is abandoned once it is older than the produce deadline, plus a margin.
        let stale_after = Duration::from_millis(config.kafka.producer_message_timeout_ms.into())
            + Duration::from_secs(5);
        let keys = Arc::new(KeyDirectory::new(deps.pool.clone(), &config.lookup_cache));
        let directory = Arc::new(Directory::new(deps.pool.clone(), ttls));
        // Changes made through the api reach this instance's caches at once.
        let listening =
            invalidation::spawn_listener(&deps.pool, vec![keys.clone(), directory.clone()]).await?;
        let intake = Arc::new(Intake {
            keys,
            directory,
            quota: quota.clone(),
            claims: Arc::new(EntityClaims::new(deps.pool.clone(), stale_after)),
            sink: deps.sink,
            clock: deps.clock,
            rate_limiter: Arc::new(KeyRateLimiter::new(
                config.rate_limit_per_sec,
                config.rate_limit_burst,
            )),
            test_rate_limiter: Arc::new(KeyRateLimiter::new(
                config.test_rate_limit_per_sec,
                config.test_rate_limit_per_sec.saturating_mul(2),
            )),
            idempotency: Arc::new(IdempotencyStore::new(deps.pool.clone())),
        });
        spawn_idempotency_sweep(Arc::clone(&intake.idempotency));
        let failures = Arc::new(FailedAuthentications::new(
            config.auth_failures_per_minute,
            config
                .trusted_proxies
                .parse()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
        let router = build_router(intake, failures, deps.readiness);
        let listener = TcpListener::bind(config.address).await?;
        Ok(Self {
            listener,
            router,
            max_body_bytes: config.max_body_bytes,
            quota,
            _listening: listening,
        })
    }

    pub fn port(&self) -> u16 {
        http::bound_port(&self.listener)
    }

    /// Serves until `shutdown` resolves, then gives unused quota back to Postgres.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "ingest listening");
        let returner = self.quota.spawn_returner();
        let served = http::serve_with_peer_addresses(
            self.listener,
            self.router,
            route_templates(),
            self.max_body_bytes,
            shutdown,
        )
        .await;
        returner.stop().await;
        self.quota.return_unused(true).await?;
        tracing::info!("ingest stopped");
        Ok(served?)
    }
}
