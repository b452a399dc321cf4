use envconfig::Envconfig;
use linktrace_ingest::config::IngestConfig;
use linktrace_ingest::startup::Application;
use linktrace_platform::{shutdown, telemetry};

/// mimalloc: allocation was a fifth of ingest's instructions per event under glibc's
/// allocator (bench/profile.sh); the limit handler it is compared with uses it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("ingest");
    let config = IngestConfig::init_from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await
}
