-- A row's content is fixed by the event alone: `written_at` defaulted to `now()`, so a block
-- sent again after a failure differed from the first, and a replicated table could not
-- recognise it as the same block (deduplication by content hash). It is the time the event
-- was received now; when a row reached ClickHouse is in system tables, not in the data.
ALTER TABLE events MODIFY COLUMN written_at DateTime DEFAULT received_at;
