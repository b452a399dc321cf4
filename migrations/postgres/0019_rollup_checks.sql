-- Days whose rollups the consumer's reconciler compares with `events`
-- (`consumer/src/reconcile.rs`): UTC days touched by a write that failed or was left open,
-- which may have reached `events` without reaching every rollup. A day is cleared once a
-- pass finds every rollup in agreement (and it was not marked again meanwhile). An operator
-- may mark days too: INSERT INTO rollup_checks (day) VALUES ('2026-12-01').
CREATE TABLE rollup_checks (
    day       DATE PRIMARY KEY,
    marked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
