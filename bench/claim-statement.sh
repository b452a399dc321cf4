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

# claims.rs's statement, its parameter arrays made inline: fresh entity ids every run.
cat >"$WORK/claim.sql" <<EOF
WITH input AS (
  SELECT * FROM unnest(
    array_fill('5f0e1d2c-3b4a-4958-8776-655443322110'::uuid, ARRAY[$ROWS]),
    array_fill('abcd1234'::text, ARRAY[$ROWS]),
    array_fill('purchase'::text, ARRAY[$ROWS]),
    ARRAY(SELECT md5(random()::text) FROM generate_series(1, $ROWS)),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, $ROWS)),
    array_fill(now(), ARRAY[$ROWS]))
  AS t(account_id, link_short_code, event_name, entity_id, event_id, event_time)),
claimed AS (
  INSERT INTO entity_events
    (account_id, link_short_code, event_name, entity_id, event_id, event_time, state, claimed_at)
  SELECT account_id, link_short_code, event_name, entity_id, event_id, event_time, 'pending', now()
  FROM input ORDER BY account_id, link_short_code, event_name, entity_id
  ON CONFLICT (account_id, link_short_code, event_name, entity_id) DO UPDATE SET claimed_at = now()
    WHERE entity_events.state = 'pending'
      AND entity_events.claimed_at < now() - make_interval(secs => 10)
  RETURNING account_id, link_short_code, event_name, entity_id, event_time)
SELECT i.account_id, i.link_short_code, i.event_name, i.entity_id, c.event_time, e.state
FROM input i
LEFT JOIN claimed c ON (c.account_id, c.link_short_code, c.event_name, c.entity_id)
                     = (i.account_id, i.link_short_code, i.event_name, i.entity_id)
LEFT JOIN entity_events e ON (e.account_id, e.link_short_code, e.event_name, e.entity_id)
                     = (i.account_id, i.link_short_code, i.event_name, i.entity_id);
EOF

run() {
  local mode="$1" round="$2" protocol options=""
  case "$mode" in
    unprepared) protocol=extended ;;
    prepared) protocol=prepared; options="-c plan_cache_mode=force_custom_plan" ;;
  esac
  PGOPTIONS="$options" "$PGBENCH" "${PG[@]}" -n -M "$protocol" -c 1 -T "$SECONDS_EACH" \
    -f "$WORK/claim.sql" "$DB" 2>/dev/null |
    awk -v name="${mode}_r$round" '/^latency average/ { print name, $4 }' >>"$WORK/results"
}

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="unprepared prepared"; else order="prepared unprepared"; fi
  for mode in $order; do run "$mode" "$round"; done
done
rows_after="$(psql "${PG[@]}" -d "$DB" -Atc 'SELECT count(*) FROM entity_events')"

python3 - "$WORK/results" "$REPO/BENCHMARKS.md" "$ROWS" "$SECONDS_EACH" "$ROUNDS" \
  "$(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet || echo ' + uncommitted changes')" \
  "$rows_after" <<'EOF'
import statistics, sys, time
sys.path.insert(0, sys.argv[2].rsplit("/", 1)[0] + "/bench")
from sections import read_results, replace_section
results, out, rows, seconds, rounds, code, total = sys.argv[1:8]
found = {name: float(ms) for name, ms in read_results(results).items()}
def series(mode):
    return [found[f"{mode}_r{r}"] for r in range(1, int(rounds) + 1)]
unprepared, prepared = series("unprepared"), series("prepared")
lines = [
    "## The entity claim statement (`bench/claim-statement.sh`)",
    "",
    f"`bench/claim-statement.sh` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code `{code}`: "
    f"ingest's claim statement, {rows} fresh tuples a run, one pgbench client on the local "
    f"Postgres, {seconds} s a mode, {rounds} alternating rounds (medians; ms a run).",
    "",
    "| how it is sent | ms a run (median) | rounds |",
    "|---|---:|---|",
    f"| unprepared, parsed and planned every run (until `6886f46`) | {statistics.median(unprepared):.3f} | {', '.join(f'{v:.2f}' for v in unprepared)} |",
    f"| prepared, planned for its parameters every run (now) | {statistics.median(prepared):.3f} | {', '.join(f'{v:.2f}' for v in prepared)} |",
    "",
    f"Prepared / unprepared: **{statistics.median(p / u for p, u in zip(prepared, unprepared)):.2f}×** "
    f"(median of the rounds' ratios); the table held {int(total):,} claims at the end. sqlx's "
    "unprepared path also waited for a Describe before binding, a round trip pgbench's does not take.",
]
replace_section(out, "claim-statement", lines)
print("\n".join(lines))
EOF
