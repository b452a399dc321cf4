use envconfig::Envconfig;
use linktrace_consumer::config::ConsumerConfig;
use linktrace_consumer::startup::Application;
use linktrace_platform::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("consumer");
    let config = ConsumerConfig::init_from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await
}
