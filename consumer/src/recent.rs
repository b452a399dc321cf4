//! The event ids this consumer has seen lately, per partition: drops the copies that a
//! producer retry without idempotence (or a replay) put on the stream at a *later* offset,
//! which the offset high-water mark cannot recognise. Entity events are also checked
//! against the Postgres dedup index; installs and entity events have deterministic ids.
//!
//! Bounded: each partition remembers its last `capacity` ids. A partition this consumer
//! no longer owns is forgotten, so that ids it read but never wrote cannot hide the
//! originals when the partition comes back.

use std::collections::{HashMap, HashSet, VecDeque};

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
    fn a_forgotten_partition_starts_empty() {
        let mut recent = RecentEvents::new(10);
        let id = Uuid::new_v4();
        recent.first_sighting(3, id);
        recent.forget(3);
        assert!(recent.first_sighting(3, id));
    }
}
