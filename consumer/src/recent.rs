//! The event ids this consumer has seen lately, per partition: drops the copies that a
//! producer retry without idempotence (or a replay) put on the stream at a *later* offset,
//! which the offset high-water mark cannot recognise. Entity events are also checked
//! against the Postgres dedup index; installs and entity events have deterministic ids.
//!
//! Bounded: each partition remembers its last `capacity` ids. A partition this consumer
//! no longer owns is forgotten, so that ids it read but never wrote cannot hide the
//! originals when the partition comes back. A partition taken over from another consumer
//! starts with the ids of the `capacity` messages before the first one read
//! ([`read_ids_before`], from the broker), so a copy whose original the previous owner
//! stored is recognised too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use linktrace_domain::EventRecord;
use linktrace_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

pub struct RecentEvents {
    capacity: usize,
    partitions: HashMap<i32, Window>,
}

#[derive(Default)]
struct Window {
    order: VecDeque<Uuid>,
    ids: HashSet<Uuid>,
}

impl RecentEvents {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            partitions: HashMap::new(),
        }
    }

    /// `true` the first time `event_id` is seen on `partition` (within the window).
    pub fn first_sighting(&mut self, partition: i32, event_id: Uuid) -> bool {
        let window = self.partitions.entry(partition).or_default();
        if !window.ids.insert(event_id) {
            return false;
        }
        window.order.push_back(event_id);
        if window.order.len() > self.capacity {
            if let Some(oldest) = window.order.pop_front() {
                window.ids.remove(&oldest);
            }
        }
        true
    }

    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    pub fn remembers(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Starts `partition`'s window with `ids` (oldest first), as if they had been seen.
    pub fn seed(&mut self, partition: i32, ids: impl IntoIterator<Item = Uuid>) {
        self.partitions.entry(partition).or_default();
        for id in ids {
            self.first_sighting(partition, id);
        }
    }
}

/// The event ids of the (at most) `count` messages of `partition` before offset `before`,
/// oldest first, read straight from the broker (not as a group member). Gives up after
/// `limit` with what it has.
pub fn read_ids_before(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    before: i64,
    count: usize,
    limit: Duration,
) -> anyhow::Result<Vec<Uuid>> {
    let start = (before - count as i64).max(0);
    if start >= before {
        return Ok(Vec::new());
    }
    let reader: BaseConsumer = kafka
        .client_config()
        .set("group.id", "linktrace-consumer-handover")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(start))?;
    reader.assign(&list)?;
    let mut ids = Vec::with_capacity((before - start) as usize);
    let started = Instant::now();
    while started.elapsed() < limit {
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                if message.offset() >= before {
                    break;
                }
                if let Ok(record) = EventRecord::from_json(message.payload().unwrap_or_default()) {
                    ids.push(record.event_id);
                }
                if message.offset() + 1 >= before {
                    break;
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_recognised_per_partition() {
        let mut recent = RecentEvents::new(10);
        let id = Uuid::new_v4();
        assert!(recent.first_sighting(0, id));
        assert!(!recent.first_sighting(0, id));
        assert!(recent.first_sighting(1, id), "partitions are apart");
    }

    #[test]
    fn the_window_is_bounded_and_forgets_the_oldest() {
        let mut recent = RecentEvents::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            assert!(recent.first_sighting(0, *id));
        }
        assert!(recent.first_sighting(0, ids[0]), "evicted");
        assert!(!recent.first_sighting(0, ids[2]));
    }

    #[test]
    fn a_seeded_window_recognises_what_another_consumer_saw() {
        let mut recent = RecentEvents::new(10);
        let seen = Uuid::new_v4();
        assert!(!recent.remembers(5));
        recent.seed(5, [seen]);
        assert!(recent.remembers(5));
        assert!(!recent.first_sighting(5, seen));
    }

    #[test]
    fn a_forgotten_partition_starts_empty() {
        let mut recent = RecentEvents::new(10);
        let id = Uuid::new_v4();
        recent.first_sighting(3, id);
        recent.forget(3);
        assert!(recent.first_sighting(3, id));
    }
}
