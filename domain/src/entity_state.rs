/// Where an entity tuple (account, link, event name, entity id) stands in the dedup index
/// (Postgres `entity_claims.state`): ingest claims it (`Pending`), marks it `Queued` once
/// the broker has the event, and the consumer marks it `Stored` once ClickHouse has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityState {
    Pending,
    Queued,
    Stored,
}

impl EntityState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityState::Pending => "pending",
            EntityState::Queued => "queued",
            EntityState::Stored => "stored",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Queued, Self::Stored]
            .into_iter()
            .find(|state| state.as_str() == raw)
    }

    /// An accepted tuple: a repeat of it is answered "deduplicated".
    pub fn is_accepted(self) -> bool {
        matches!(self, EntityState::Queued | EntityState::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_only_queued_or_stored_is_accepted() {
        for state in [
            EntityState::Pending,
            EntityState::Queued,
            EntityState::Stored,
        ] {
            assert_eq!(EntityState::parse(state.as_str()), Some(state));
        }
        assert_eq!(EntityState::parse("done"), None);
        assert!(!EntityState::Pending.is_accepted());
        assert!(EntityState::Queued.is_accepted() && EntityState::Stored.is_accepted());
    }
}
