#!/usr/bin/env bash
# The entity dedup index before and after migration 0011, under 256 connections: each
# pgbench transaction is one ingest batch of BENCH_CLAIM_ROWS (32) fresh entity events through
# their whole life in Postgres, as the services send it: the claim (ingest's group-committed
# statement), the mark "queued" (ingest, once the broker has them) and the mark "stored" (the
# consumer). Measured:
#   claims/s: transactions/s x rows, 256 clients (BENCH_CLIENTS), BENCH_SECONDS (20) a
#     mode, the two modes alternating over BENCH_ROUNDS (3) rounds; medians;
#   bytes per million entity events: the table with its indexes (and its partitions) after
#     the runs, divided by its rows, as left by the runs (dead row versions included) and
#     after a VACUUM.
#   before: `entity_events` (migrations 1-10): keyed by (account, environment, link, event,
#     entity), a second index on event_id;
#   after: `entity_claims` (1-11): keyed by the 16-byte claim key, 4 hash partitions,
#     fill factor 80.
# The keys are computed in SQL here (md5 of the tuple, both modes alike); ingest computes
# them in Rust. Runs its own Postgres (this machine's, initdb'd in a scratch folder on port
# BENCH_PG_PORT, 5499) with max_connections 300, so the machine's server is untouched.
# Writes the "entity-claims" section of BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
ROWS="${BENCH_CLAIM_ROWS:-32}"
CLIENTS="${BENCH_CLIENTS:-256}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
ROUNDS="${BENCH_ROUNDS:-3}"
PORT="${BENCH_PG_PORT:-5499}"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
PGBENCH="$(command -v pgbench || echo "$PGBIN/pgbench")"
WORK="$(mktemp -d)"
chown postgres "$WORK"
PG=(-h 127.0.0.1 -p "$PORT" -U postgres)
stop() {
  su postgres -c "$PGBIN/pg_ctl -D $WORK/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop EXIT

su postgres -c "$PGBIN/initdb -D $WORK/data -A trust -U postgres" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/data -l $WORK/postgres.log -w start \
  -o '-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK -c max_connections=$((CLIENTS + 20))'" >/dev/null

migrate() { # DB LAST: a database with migrations 1..LAST
  psql "${PG[@]}" -qc "CREATE DATABASE $1"
  for migration in "$REPO"/migrations/postgres/*.sql; do
    [[ "$(basename "$migration")" < "$(printf '%04d' $(($2 + 1)))" ]] || continue
    psql "${PG[@]}" -d "$1" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
  done
}
migrate before 10
migrate after 11

# One batch of fresh tuples: entity ids from a random batch number, keys from the tuple.
ACCOUNT="5f0e1d2c-3b4a-4958-8776-655443322110"
ENTITIES="ARRAY(SELECT 'order-' || :batch || '-' || g FROM generate_series(1, $ROWS) g)"
KEYS="ARRAY(SELECT md5('live' || '$ACCOUNT' || 'abcd1234' || 'purchase' || 'order-' || :batch || '-' || g)::uuid FROM generate_series(1, $ROWS) g ORDER BY 1)"
FILL() { echo "array_fill($1, ARRAY[$ROWS])"; }

cat >"$WORK/before.sql" <<SQL
\set batch random(1, 1000000000000)
WITH input AS (
  SELECT * FROM unnest($(FILL "'$ACCOUNT'::uuid"), $(FILL "'live'::text"), $(FILL "'abcd1234'::text"),
    $(FILL "'purchase'::text"), $ENTITIES,
    ARRAY(SELECT md5('live' || '$ACCOUNT' || 'abcd1234' || 'purchase' || 'order-' || :batch || '-' || g)::uuid FROM generate_series(1, $ROWS) g),
    $(FILL "now()"))
  AS t(account_id, environment, link_short_code, event_name, entity_id, event_id, event_time)),
claimed AS (
  INSERT INTO entity_events
    (account_id, environment, link_short_code, event_name, entity_id, event_id, event_time, state, claimed_at)
  SELECT account_id, environment, link_short_code, event_name, entity_id, event_id, event_time, 'pending', now()
  FROM input ORDER BY account_id, environment, link_short_code, event_name, entity_id
  ON CONFLICT (account_id, environment, link_short_code, event_name, entity_id) DO UPDATE SET claimed_at = now()
    WHERE entity_events.state = 'pending' AND entity_events.claimed_at < now() - make_interval(secs => 10)
  RETURNING account_id, environment, link_short_code, event_name, entity_id, event_id, event_time)
SELECT i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id, c.event_id, c.event_time, e.state
FROM input i
LEFT JOIN claimed c ON (c.account_id, c.environment, c.link_short_code, c.event_name, c.entity_id)
                     = (i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id)
LEFT JOIN entity_events e ON (e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id)
                     = (i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id);
WITH k AS (
  SELECT * FROM unnest($(FILL "'$ACCOUNT'::uuid"), $(FILL "'live'::text"), $(FILL "'abcd1234'::text"),
    $(FILL "'purchase'::text"), $ENTITIES)
  AS k(account_id, environment, link_short_code, event_name, entity_id)),
locked AS (
  SELECT e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id
  FROM entity_events e JOIN k ON (e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id)
                               = (k.account_id, k.environment, k.link_short_code, k.event_name, k.entity_id)
  WHERE e.state = 'pending'
  ORDER BY e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id
  FOR UPDATE OF e)
UPDATE entity_events e SET state = 'queued' FROM locked l
WHERE (e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id)
    = (l.account_id, l.environment, l.link_short_code, l.event_name, l.entity_id);
UPDATE entity_events SET state = 'stored' WHERE event_id = ANY($KEYS) AND state <> 'stored';
SQL

cat >"$WORK/after.sql" <<SQL
\set batch random(1, 1000000000000)
WITH input AS (
  SELECT * FROM unnest($KEYS, $(FILL "'$ACCOUNT'::uuid"), $(FILL "now()")) AS t(event_id, account_id, event_time)),
claimed AS (
  INSERT INTO entity_claims (event_id, account_id, event_time, state, claimed_at)
  SELECT event_id, account_id, event_time, 'pending', now() FROM input ORDER BY event_id
  ON CONFLICT (event_id) DO UPDATE SET claimed_at = now()
    WHERE entity_claims.state = 'pending' AND entity_claims.claimed_at < now() - make_interval(secs => 10)
  RETURNING event_id, coalesce(stored_event_id, event_id) AS produce_id, event_time)
SELECT i.event_id, c.produce_id, c.event_time, e.state
FROM input i
LEFT JOIN claimed c ON c.event_id = i.event_id
LEFT JOIN entity_claims e ON e.event_id = i.event_id;
WITH locked AS (
  SELECT event_id FROM entity_claims WHERE event_id = ANY($KEYS) AND state = 'pending'
  ORDER BY event_id FOR UPDATE)
UPDATE entity_claims e SET state = 'queued' FROM locked l WHERE e.event_id = l.event_id;
UPDATE entity_claims SET state = 'stored' WHERE event_id = ANY($KEYS) AND state <> 'stored';
SQL

: >"$WORK/results"
run() { # MODE ROUND
  "$PGBENCH" "${PG[@]}" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$WORK/$1.sql" "$1" \
    2>"$WORK/pgbench.err" | awk -v name="$1_r$2" -v rows="$ROWS" \
      '/^tps = / { printf "%s %.1f\n", name, $3 * rows }' >>"$WORK/results"
  grep -q "^$1_r$2 " "$WORK/results" || { cat "$WORK/pgbench.err" >&2; exit 1; }
}
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="before after"; else order="after before"; fi
  for mode in $order; do run "$mode" "$round"; done
done

size() { # DB TABLE: bytes of TABLE with its indexes and partitions
  psql "${PG[@]}" -d "$1" -Atc "SELECT pg_total_relation_size('$2'::regclass)
    + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = '$2'::regclass), 0)"
}
for pair in before:entity_events after:entity_claims; do
  db="${pair%%:*}" table="${pair#*:}"
  echo "${db}_rows $(psql "${PG[@]}" -d "$db" -Atc "SELECT count(*) FROM $table")" >>"$WORK/results"
  echo "${db}_bytes $(size "$db" "$table")" >>"$WORK/results"
  psql "${PG[@]}" -d "$db" -qc "VACUUM $table"
  echo "${db}_bytes_vacuumed $(size "$db" "$table")" >>"$WORK/results"
done

bench_report entity-claims "$WORK/results" "$REPO/BENCHMARKS.md" "$ROWS" "$CLIENTS" "$SECONDS_EACH" "$ROUNDS" \
  "$(code_under_test)"
