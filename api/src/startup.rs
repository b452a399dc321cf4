use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use linktrace_platform::clickhouse::ClickHouseReadiness;
use linktrace_platform::clock::{Clock, SystemClock};
use linktrace_platform::health::Readiness;
use linktrace_platform::http;
use linktrace_platform::http_metrics::RouteTemplates;
use linktrace_platform::kafka::{EventSink, KafkaReadiness, KafkaSink};
use linktrace_platform::keys::KeyDirectory;
use linktrace_platform::postgres::{self, PostgresReadiness};
use sqlx::PgPool;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tokio_util::task::TaskTracker;

use crate::clicks::ClickEnricher;
use crate::config::ApiConfig;
use crate::routes::{
    admin, analytics, apps, attributions, breakdowns, dashboard, export, links, redirect, webhooks,
};
use crate::state::{AppState, Settings};

pub struct Dependencies {
    pub pool: PgPool,
    pub clickhouse: clickhouse::Client,
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub readiness: Readiness,
}

impl Dependencies {
    pub async fn connect(config: &ApiConfig) -> anyhow::Result<Self> {
        let pool = postgres::connect_and_migrate(&config.postgres).await?;
        config.clickhouse.ensure_schema(&pool).await?;
        let clickhouse = config.clickhouse.client();
        let sink = Arc::new(KafkaSink::new(&config.kafka)?);
        let readiness = Readiness::new()
            .with(Arc::new(PostgresReadiness(pool.clone())))
            .with(Arc::new(ClickHouseReadiness(clickhouse.clone())))
            .with(Arc::new(KafkaReadiness::new(&sink)));
        Ok(Self {
            pool,
            clickhouse,
            sink,
            clock: Arc::new(SystemClock),
            readiness,
        })
    }
}

/// The api's public routes, each with its OpenAPI description (`openapi()` takes the
/// description, `build_router` the routes).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin::create_account))
        .routes(routes!(admin::change_plan))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(links::create, links::list))
        .routes(routes!(links::metadata))
        .routes(routes!(links::update, links::delete))
        .routes(routes!(attributions::create))
        .routes(routes!(analytics::totals))
        .routes(routes!(analytics::timeseries))
        .routes(routes!(analytics::funnel))
        .routes(routes!(analytics::top_links))
        .routes(routes!(breakdowns::analytics))
        .routes(routes!(export::events))
        .routes(routes!(apps::put))
        .routes(routes!(apps::apple_app_site_association))
        .routes(routes!(apps::assetlinks))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(redirect::follow))
}

/// The OpenAPI description of the api's public routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The api's routes that are not in its OpenAPI description.
const DASHBOARD: &str = "/dashboard";
const SHORT_LINK: &str = "/{short_code}";

pub fn build_router(state: AppState, readiness: Readiness) -> Router {
    let (documented, _) = routes().split_for_parts();
    let api = documented
        .route(DASHBOARD, get(dashboard::page))
        // Static routes win over this one, so no short code shadows a service path.
        .route(SHORT_LINK, get(redirect::follow))
        .method_not_allowed_fallback(http::method_not_allowed)
        .with_state(state);
    api.merge(http::operational_routes(readiness))
        .fallback(http::not_found)
}

/// The templates of every route [`build_router`] serves, for the request metrics.
pub fn route_templates() -> RouteTemplates {
    let undocumented = [DASHBOARD, SHORT_LINK];
    RouteTemplates::documented(
        &openapi(),
        http::OPERATIONAL_PATHS.into_iter().chain(undocumented),
    )
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    clicks_in_flight: TaskTracker,
}

/// The largest request body any api route reads.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long shutdown waits for clicks still on their way to the broker.
const CLICK_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Application {
    pub async fn build(config: ApiConfig) -> anyhow::Result<Self> {
        let dependencies = Dependencies::connect(&config).await?;
        Self::build_with(&config, dependencies).await
    }

    pub async fn build_with(config: &ApiConfig, deps: Dependencies) -> anyhow::Result<Self> {
        let state = AppState {
            keys: Arc::new(KeyDirectory::new(deps.pool.clone(), &config.lookup_cache)),
            pool: deps.pool,
            clickhouse: deps.clickhouse,
            sink: deps.sink,
            clock: deps.clock,
            settings: Arc::new(Settings {
                public_base_url: config.public_base_url.clone(),
                admin_token: config.admin_token.clone(),
                attribution_window: Duration::from_secs(
                    u64::from(config.attribution_window_hours) * 3600,
                ),
                endpoint_policy: config.endpoint_policy.policy(),
            }),
            redirect_cache: AppState::redirect_cache(),
            clicks: Arc::new(ClickEnricher::from_config(&config.clicks)?),
            clicks_in_flight: TaskTracker::new(),
        };
        let clicks_in_flight = state.clicks_in_flight.clone();
        let router = build_router(state, deps.readiness);
        let listener = TcpListener::bind(config.address).await?;
        Ok(Self {
            listener,
            router,
            clicks_in_flight,
        })
    }

    pub fn port(&self) -> u16 {
        http::bound_port(&self.listener)
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "api listening");
        http::serve_with_peer_addresses(
            self.listener,
            self.router,
            route_templates(),
            MAX_BODY_BYTES,
            shutdown,
        )
        .await?;
        self.clicks_in_flight.close();
        if tokio::time::timeout(CLICK_DRAIN_TIMEOUT, self.clicks_in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.clicks_in_flight.len(),
                "stopped before every click reached the broker"
            );
        }
        tracing::info!("api stopped");
        Ok(())
    }
}
