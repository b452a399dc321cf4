#!/usr/bin/env bash
# The entity claim statement on its own (ingest/src/claims.rs, `claim_batch`), the way ingest
# ran it until 6886f46 against the way it runs it now, with pgbench on the local Postgres:
#   unprepared: an unnamed statement parsed and planned at every run (sqlx's
#     `persistent(false)`, pgbench's `-M extended`; sqlx also waited for a Describe before
#     binding, which pgbench does not, so this understates the old cost);
#   prepared: prepared once per session and planned for its parameters at every run
#     (`-M prepared` with `plan_cache_mode=force_custom_plan`, ingest's POSTGRES_SETTINGS).
# Each run claims BENCH_CLAIM_ROWS (32) fresh tuples of one account and link, into a scratch
# database migrated with the project's own migrations. One client, BENCH_SECONDS (5) a mode,
# modes alternating over BENCH_ROUNDS (5) rounds; medians. Writes the "claim-statement"
# section of BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
ROWS="${BENCH_CLAIM_ROWS:-32}"
SECONDS_EACH="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
DB="linktrace_claims_$(date +%s)"
PG=(-h 127.0.0.1 -U postgres)
PGBENCH="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -n 1)"
WORK="$(mktemp -d)"
trap 'psql "${PG[@]}" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

psql "${PG[@]}" -qc "CREATE DATABASE $DB"
# The statement measured is the one of `entity_events`, which migration 0011 replaced by
# `entity_claims` (bench/entity-claims.sh compares the two): migrations before 0011 only.
for migration in "$REPO"/migrations/postgres/*.sql; do
  [[ "$(basename "$migration")" < 0011 ]] || continue
  psql "${PG[@]}" -d "$DB" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done

# claims.rs's statement before migration 0011 (keyed by environment since 0006), its
# parameter arrays made inline: fresh entity ids every run.
cat >"$WORK/claim.sql" <<EOF
WITH input AS (
  SELECT * FROM unnest(
    array_fill('5f0e1d2c-3b4a-4958-8776-655443322110'::uuid, ARRAY[$ROWS]),
    array_fill('live'::text, ARRAY[$ROWS]),
    array_fill('abcd1234'::text, ARRAY[$ROWS]),
    array_fill('purchase'::text, ARRAY[$ROWS]),
    ARRAY(SELECT md5(random()::text) FROM generate_series(1, $ROWS)),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, $ROWS)),
    array_fill(now(), ARRAY[$ROWS]))
  AS t(account_id, environment, link_short_code, event_name, entity_id, event_id, event_time)),
claimed AS (
  INSERT INTO entity_events
    (account_id, environment, link_short_code, event_name, entity_id, event_id, event_time, state, claimed_at)
  SELECT account_id, environment, link_short_code, event_name, entity_id, event_id, event_time, 'pending', now()
  FROM input ORDER BY account_id, environment, link_short_code, event_name, entity_id
  ON CONFLICT (account_id, environment, link_short_code, event_name, entity_id) DO UPDATE SET claimed_at = now()
    WHERE entity_events.state = 'pending'
      AND entity_events.claimed_at < now() - make_interval(secs => 10)
  RETURNING account_id, environment, link_short_code, event_name, entity_id, event_time)
SELECT i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id, c.event_time, e.state
FROM input i
LEFT JOIN claimed c ON (c.account_id, c.environment, c.link_short_code, c.event_name, c.entity_id)
                     = (i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id)
LEFT JOIN entity_events e ON (e.account_id, e.environment, e.link_short_code, e.event_name, e.entity_id)
                     = (i.account_id, i.environment, i.link_short_code, i.event_name, i.entity_id);
EOF

run() {
  local mode="$1" round="$2" protocol options=""
  case "$mode" in
    unprepared) protocol=extended ;;
    prepared) protocol=prepared; options="-c plan_cache_mode=force_custom_plan" ;;
  esac
  # A run that fails (a statement the schema no longer takes) says so and ends the benchmark.
  if ! PGOPTIONS="$options" "$PGBENCH" "${PG[@]}" -n -M "$protocol" -c 1 -T "$SECONDS_EACH" \
    -f "$WORK/claim.sql" "$DB" >"$WORK/pgbench.out" 2>&1; then
    echo "pgbench failed ($mode, round $round):" >&2; grep -i error "$WORK/pgbench.out" >&2; return 1
  fi
  awk -v name="${mode}_r$round" '/^latency average/ { print name, $4 }' "$WORK/pgbench.out" >>"$WORK/results"
}

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="unprepared prepared"; else order="prepared unprepared"; fi
  for mode in $order; do run "$mode" "$round"; done
done
rows_after="$(psql "${PG[@]}" -d "$DB" -Atc 'SELECT count(*) FROM entity_events')"

bench_report claim-statement "$WORK/results" "$REPO/BENCHMARKS.md" "$ROWS" "$SECONDS_EACH" "$ROUNDS" \
  "$(code_under_test)" "$rows_after"
