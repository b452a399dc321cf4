use envconfig::Envconfig;
use linktrace_platform::{shutdown, telemetry};
use linktrace_webhooks::config::WebhooksConfig;
use linktrace_webhooks::startup::Application;

/// mimalloc, as ingest and the api: glibc's allocator was about 8% of the worker's CPU while
/// it delivered (perf, during `bench/webhooks.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("webhooks");
    let config = WebhooksConfig::init_from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await
}
