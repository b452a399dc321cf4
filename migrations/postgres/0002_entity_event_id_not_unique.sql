-- event_id is derived from the primary key's columns, so it is unique already. A second
-- unique index is not an arbiter of `INSERT … ON CONFLICT (primary key)`: two concurrent
-- claims of one tuple could then fail on it instead of one of them seeing the conflict.
DROP INDEX entity_events_event_id;
CREATE INDEX entity_events_event_id ON entity_events (event_id);
