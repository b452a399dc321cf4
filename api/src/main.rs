use envconfig::Envconfig;
use linktrace_api::config::ApiConfig;
use linktrace_api::startup::Application;
use linktrace_platform::{shutdown, telemetry};

/// mimalloc, as ingest: the allocator was 11-14% of the redirect's CPU under glibc's
/// (`bench/redirect.sh`'s profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("api");
    let config = ApiConfig::init_from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await
}
