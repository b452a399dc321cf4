//! The consumer's physical limit: a consumer-group member that reads the events topic with
//! the consumer's own client settings (`group_consumer_config` and its fetch defaults) and
//! discards every message. `bare-consumer GROUP EXPECTED` reads from the start of the topic
//! (`KAFKA_BROKERS`, `KAFKA_EVENTS_TOPIC`) until EXPECTED messages came, then prints
//! `{"messages": N, "seconds": S}`. `bench/drain.sh` sets the consumer's drain against it.

use std::time::{Duration, Instant};

use envconfig::Envconfig;
use linktrace_platform::kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let group = args.next().expect("GROUP");
    let expected: u64 = args.next().expect("EXPECTED").parse()?;
    let kafka = KafkaConfig::init_from_env()?;
    // The consumer's defaults (consumer/src/config.rs).
    let consumer: StreamConsumer = kafka
        .group_consumer_config(&group, "")
        .set("session.timeout.ms", "10000")
        .set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", "100")
        .set("max.partition.fetch.bytes", "1048576")
        .set("queued.min.messages", "100000")
        .create()?;
    consumer.subscribe(&[&kafka.events_topic])?;
    // The clock starts at the first message: joining the group is not reading.
    let mut started = None;
    let mut messages = 0u64;
    while messages < expected {
        match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
            Ok(Ok(_)) => {
                started.get_or_insert_with(Instant::now);
                messages += 1;
            }
            Ok(Err(error)) => anyhow::bail!("reading: {error}"),
            Err(_) => anyhow::bail!("nothing for 60 s after {messages} of {expected}"),
        }
    }
    let seconds = started.map_or(0.0, |at| at.elapsed().as_secs_f64());
    println!("{{\"messages\": {messages}, \"seconds\": {seconds:.3}}}");
    Ok(())
}
