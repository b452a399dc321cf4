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

use crate::access;
use crate::clicks::ClickEnricher;
use crate::config::ApiConfig;
use crate::routes::{
    admin, analytics, apps, attributions, dashboard, domains, export, links, opens, redirect,
    webhooks,
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
    admin_routes().merge(key_routes())
}

/// `/admin/v1/*`: served to `ADMIN_NETWORKS` only (`access`).
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin::create_account))
        .routes(routes!(admin::change_plan))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(domains::operator_verify))
}

/// Everything else: key-authenticated `/api/v1/*`, the redirect and the link host's files.
fn key_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(links::create, links::list))
        .routes({
            // Its own body limit: up to 1,000 links.
            let (schemas, paths, route) = routes!(links::bulk_create);
            (
                schemas,
                paths,
                route.layer(axum::extract::DefaultBodyLimit::max(
                    links::MAX_BULK_BODY_BYTES,
                )),
            )
        })
        .routes(routes!(links::metadata))
        .routes(routes!(links::qr_code))
        .routes(routes!(links::update, links::delete))
        .routes(routes!(attributions::create))
        .routes(routes!(attributions::match_types))
        .routes(routes!(opens::record))
        .routes(routes!(domains::add, domains::list))
        .routes(routes!(domains::remove))
        .routes(routes!(domains::check))
        .routes(routes!(analytics::reports::totals))
        .routes(routes!(analytics::reports::timeseries))
        .routes(routes!(analytics::reports::funnel))
        .routes(routes!(analytics::reports::top_links))
        .routes(routes!(analytics::breakdowns::analytics))
        .routes(routes!(export::events))
        .routes(routes!(apps::put))
        .routes(routes!(apps::apple_app_site_association))
        .routes(routes!(apps::assetlinks))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(redirect::follow))
        .routes(routes!(dashboard::create_sign_in_link))
}

/// The OpenAPI description of the api's public routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The api's routes that are not in its OpenAPI description: the dashboard's page, its
/// charting library and its sign-in (HTML forms and redirects, not JSON), and root-level
/// short links.
const UNDOCUMENTED: [&str; 6] = [
    dashboard::PAGE,
    dashboard::ASSET,
    dashboard::SIGN_IN,
    dashboard::SIGN_IN_LINK,
    dashboard::SIGN_OUT,
    SHORT_LINK,
];
const SHORT_LINK: &str = "/{short_code}";

pub fn build_router(state: AppState, readiness: Readiness) -> Router {
    let (admin, _) = admin_routes().split_for_parts();
    let (keyed, _) = key_routes().split_for_parts();
    let documented = admin
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::admin_only,
        ))
        .merge(keyed.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::throttle_failed_keys,
        )));
    let sign_in = Router::new()
        .route(dashboard::SIGN_IN, axum::routing::post(dashboard::sign_in))
        .route(dashboard::SIGN_IN_LINK, get(dashboard::sign_in_link))
        .route(
            dashboard::SIGN_OUT,
            axum::routing::post(dashboard::sign_out),
        )
        // Wrong keys and links count as failed authentications of their address.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::throttle_failed_authentication,
        ));
    let api = documented
        .merge(sign_in)
        .route(dashboard::PAGE, get(dashboard::page))
        .route(dashboard::ASSET, get(dashboard::asset))
        // Static routes win over this one, so no short code shadows a service path.
        .route(SHORT_LINK, get(redirect::follow))
        .method_not_allowed_fallback(http::method_not_allowed)
        .with_state(state);
    api.merge(http::operational_routes(readiness))
        .fallback(http::not_found)
}

/// The templates of every route [`build_router`] serves, for the request metrics.
pub fn route_templates() -> RouteTemplates {
    RouteTemplates::documented(
        &openapi(),
        http::OPERATIONAL_PATHS.into_iter().chain(UNDOCUMENTED),
    )
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    clicks_in_flight: TaskTracker,
    /// Change notifications for the key cache, for as long as the service runs.
    _listening: linktrace_platform::invalidation::Listening,
    /// The visitor-salt keeper and the click-window sweeper, for as long as the service runs.
    _salt_keeper: AbortOnDrop,
    _repeat_sweeper: AbortOnDrop,
}

/// A background task that ends with the service holding it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        crate::routes::redirect::register_metrics();
        linktrace_platform::kafka::register_metrics();
        access::check_production(&config.deployment, config.admin_token.expose())?;
        let admin_networks = config
            .admin_networks
            .parse()
            .map_err(|e| anyhow::anyhow!("ADMIN_NETWORKS: {e}"))?;
        let keys = Arc::new(KeyDirectory::new(deps.pool.clone(), &config.lookup_cache));
        // A key revoked or a plan changed by another api instance is seen here at once.
        let redirect_cache = AppState::redirect_cache();
        let domain_owners = Arc::new(crate::domains::DomainOwners::new(deps.pool.clone()));
        let listening = linktrace_platform::invalidation::spawn_listener(
            &deps.pool,
            vec![
                keys.clone(),
                domain_owners.clone(),
                Arc::new(crate::state::RedirectCacheInvalidation(
                    redirect_cache.clone(),
                )),
            ],
        )
        .await?;
        let clicks = Arc::new(ClickEnricher::from_config(&config.clicks)?);
        let repeats = Arc::new(crate::clicks::repeats::RepeatClicks::new(
            deps.pool.clone(),
            Duration::from_secs(config.clicks.repeat_window_secs),
        ));
        let repeat_sweeper = {
            let repeats = repeats.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(300));
                loop {
                    every.tick().await;
                    if let Err(error) = repeats.sweep(chrono::Utc::now()).await {
                        tracing::warn!(%error, "could not sweep closed click windows");
                    }
                }
            })
        };
        // Each day's visitor salt, shared through Postgres and destroyed after its day.
        let salt_keeper = crate::clicks::VisitorSalts::new(deps.pool.clone())
            .keep(clicks.visitors.clone())
            .await?;
        let dns = Arc::new(crate::domains::DnsVerifier::new(&config.dns_resolver)?);
        let state = AppState {
            keys,
            domain_owners,
            dns,
            pool: deps.pool,
            clickhouse: deps.clickhouse,
            sink: deps.sink,
            clock: deps.clock,
            repeats: repeats.clone(),
            rate_limiter: Arc::new(linktrace_platform::rate_limit::KeyRateLimiter::new(
                config.rate_limit_per_sec,
                config.rate_limit_burst,
            )),
            access: Arc::new(access::Access::new(
                admin_networks,
                linktrace_platform::failed_auth::FailedAuthentications::new(
                    config.auth_failures_per_minute,
                    config.clicks.trusted_proxies.parse()?,
                ),
            )),
            settings: Arc::new(Settings {
                public_base_url: config.public_base_url.clone(),
                secure_cookies: config.public_base_url.starts_with("https://"),
                dashboard_assets: match config.dashboard_assets_dir.trim() {
                    "" => None,
                    dir => Some(dir.into()),
                },
                admin_token: config.admin_token.clone(),
                attribution_window_hours: config.attribution_window_hours.max(1),
                endpoint_policy: config.endpoint_policy.policy(),
                link_host_account: match config.link_host_account.trim() {
                    "" => None,
                    raw => Some(raw.parse().map_err(|_| {
                        anyhow::anyhow!("LINK_HOST_ACCOUNT must be an account id (a UUID)")
                    })?),
                },
                public_host: url::Url::parse(&config.public_base_url)
                    .ok()
                    .and_then(|url| url.host_str().map(str::to_ascii_lowercase)),
            }),
            redirect_cache,
            clicks,
            clicks_in_flight: TaskTracker::new(),
        };
        let clicks_in_flight = state.clicks_in_flight.clone();
        let router = build_router(state, deps.readiness);
        let listener = TcpListener::bind(config.address).await?;
        Ok(Self {
            listener,
            router,
            clicks_in_flight,
            _listening: listening,
            _salt_keeper: AbortOnDrop(salt_keeper),
            _repeat_sweeper: AbortOnDrop(repeat_sweeper),
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
