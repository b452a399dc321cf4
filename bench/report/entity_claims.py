"""bench/entity-claims.sh's raw results → the "entity-claims" section of BENCHMARKS.md.

Usage: bench/report entity-claims RESULTS BENCHMARKS.md ROWS CLIENTS SECONDS ROUNDS CODE"""
import statistics
import sys
import time
from .sections import read_results, replace_section

results, out, rows, clients, seconds, rounds, code = sys.argv[1:8]
found = read_results(results)
series = {m: [float(found[f"{m}_r{r}"]) for r in range(1, int(rounds) + 1)] for m in ("before", "after")}
per_million = {m: {k: float(found[f"{m}_{k}"]) / float(found[f"{m}_rows"]) * 1e6 for k in ("bytes", "bytes_vacuumed")} for m in ("before", "after")}
mb = lambda b: f"{b / 1e6:.0f} MB"
ratios = [a / b for a, b in zip(series["after"], series["before"])]
lines = [
    "## The entity dedup index under 256 connections (`bench/entity-claims.sh`)",
    "",
    f"`bench/entity-claims.sh` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code `{code}`: "
    f"each pgbench transaction is one batch of {rows} fresh entity events through their life in Postgres "
    f"(claim, mark queued, mark stored), {clients} clients on a Postgres of its own (this machine's 15, "
    f"default settings but max_connections), {seconds} s a mode, {rounds} alternating rounds; medians.",
    "",
    "| index | entity claims/s (median) | rounds | bytes per million entity events | after VACUUM |",
    "|---|---:|---|---:|---:|",
    f"| before: `entity_events`, five-column key + event_id index | {statistics.median(series['before']):,.0f} | "
    f"{', '.join(f'{v:,.0f}' for v in series['before'])} | {mb(per_million['before']['bytes'])} | {mb(per_million['before']['bytes_vacuumed'])} |",
    f"| after: `entity_claims`, 16-byte key, 4 hash partitions, fill factor 80 | {statistics.median(series['after']):,.0f} | "
    f"{', '.join(f'{v:,.0f}' for v in series['after'])} | {mb(per_million['after']['bytes'])} | {mb(per_million['after']['bytes_vacuumed'])} |",
    "",
    f"After / before: **{statistics.median(ratios):.2f}×** claims/s (median of the rounds' ratios), "
    f"**{per_million['after']['bytes'] / per_million['before']['bytes']:.2f}×** bytes per million as the runs left them "
    f"({int(found['before_rows']):,} and {int(found['after_rows']):,} claims at the end). Bounded by the machine's two "
    "cores, which Postgres and pgbench share: a bigger server moves both numbers, the ratio is the finding.",
]
replace_section(out, "entity-claims", lines)
print("\n".join(lines))
