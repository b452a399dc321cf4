//! The event sink: where accepted events go. The Kafka implementation answers only once
//! the broker has acknowledged the event (`acks=all`), within the configured deadline.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use linktrace_domain::{EventRecord, WriteLayout};
use prometheus::{
    register_histogram, register_int_counter_vec, register_int_gauge, Histogram, IntCounterVec,
    IntGauge,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::KafkaConfig;
use crate::health::ReadinessCheck;
use crate::metrics::LATENCY_BUCKETS;

/// Registers the producer's metrics now, so that a dashboard reads zeros, not "no data",
/// before the first event.
pub fn register_metrics() {
    LazyLock::force(&PRODUCE_LATENCY);
    LazyLock::force(&PRODUCE_ERRORS);
    LazyLock::force(&PRODUCER_QUEUE_DEPTH);
}

static PRODUCE_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kafka_produce_duration_seconds",
        "Time from handing an event to the producer to the broker's acknowledgement",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

static PRODUCE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kafka_produce_errors_total",
        "Events the broker did not acknowledge, by reason",
        &["reason"]
    )
    .expect("metric registers once")
});

static PRODUCER_QUEUE_DEPTH: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kafka_producer_queue_depth",
        "Messages waiting in the producer for the broker"
    )
    .expect("metric registers once")
});

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("the event is larger than the broker accepts")]
    TooLarge,
    #[error("the broker did not acknowledge the event: {0}")]
    Unavailable(String),
}

impl SinkError {
    fn reason(&self) -> &'static str {
        match self {
            SinkError::TooLarge => "too_large",
            SinkError::Unavailable(_) => "unavailable",
        }
    }
}

#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Resolves once the event is durably in the stream, or fails.
    async fn send(&self, record: &EventRecord) -> Result<(), SinkError>;

    /// Sends many events at once; one result per event, in order.
    async fn send_batch(&self, records: &[EventRecord]) -> Vec<Result<(), SinkError>> {
        futures::future::join_all(records.iter().map(|r| self.send(r))).await
    }
}

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    deadline: Duration,
    layout: WriteLayout,
}

impl KafkaSink {
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        Self::for_topic(config, &config.events_topic)
    }

    pub fn for_topic(config: &KafkaConfig, topic: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer = config.producer_config().create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            deadline: Duration::from_millis(config.producer_message_timeout_ms.into()),
            layout: config.record_layout,
        })
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Sends raw bytes with headers (used for dead letters).
    pub async fn send_raw(
        &self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: rdkafka::message::OwnedHeaders,
    ) -> Result<(), SinkError> {
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        self.deliver(record).await
    }

    async fn deliver<K, P>(&self, record: FutureRecord<'_, K, P>) -> Result<(), SinkError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let started = Instant::now();
        // librdkafka times a message out only once its produce request is done with, and an
        // in-flight request waits up to `request.timeout.ms` (30 s) on a broker that stopped
        // answering; the 5 s contract is kept here instead. Past it the caller gets an error
        // although the broker may still take the event later: a retry is deduplicated
        // downstream by event id.
        let sent = self.producer.send(record, Timeout::After(self.deadline));
        let outcome = match tokio::time::timeout(self.deadline, sent).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(classify(error)),
            Err(_elapsed) => Err(SinkError::Unavailable(format!(
                "no acknowledgement within {} ms",
                self.deadline.as_millis()
            ))),
        };
        PRODUCER_QUEUE_DEPTH.set(self.producer.in_flight_count().into());
        match outcome {
            Ok(()) => {
                PRODUCE_LATENCY.observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(error) => {
                PRODUCE_ERRORS.with_label_values(&[error.reason()]).inc();
                tracing::warn!(%error, topic = %self.topic, "produce failed");
                Err(error)
            }
        }
    }
}

fn classify(error: KafkaError) -> SinkError {
    match error {
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
        | KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessageSize) => {
            SinkError::TooLarge
        }
        other => SinkError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl EventSink for KafkaSink {
    #[tracing::instrument(name = "produce", skip_all, fields(event_id = %record.event_id))]
    async fn send(&self, record: &EventRecord) -> Result<(), SinkError> {
        let payload = record.to_json_as(self.layout);
        let key = record.partition_key();
        let message = FutureRecord::to(&self.topic)
            .key(key.as_ref())
            .payload(&payload);
        self.deliver(message).await
    }
}

/// Ready when the broker answers a metadata request for the topic.
pub struct KafkaReadiness {
    producer: FutureProducer,
    topic: String,
}

impl KafkaReadiness {
    pub fn new(sink: &KafkaSink) -> Self {
        Self {
            producer: sink.producer.clone(),
            topic: sink.topic.clone(),
        }
    }
}

#[async_trait]
impl ReadinessCheck for KafkaReadiness {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_millis(1500))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
