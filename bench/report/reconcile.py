"""bench/reconcile.sh's raw results → the "reconcile" section of BENCHMARKS.md.

Usage: bench/report reconcile RESULTS.json BENCHMARKS.md COMMIT"""
import json
import sys
from .sections import replace_section

r = json.load(open(sys.argv[1]))
lines = [
    "## Rollup reconciliation (`bench/reconcile.sh`)",
    "",
    f"At `{sys.argv[3]}`, ClickHouse {r['server']}, a day of {r['events']:,} events "
    f"(written through the views in {r['write_ms'] / 1000:.1f} s), medians of {r['rounds']} interleaved rounds. "
    "The baseline of each rollup is its views' own query over the day (what they computed as the events "
    "were written: the least a comparison must read); a differences query adds the rollup's rows of the day "
    "and a GROUP BY of both by the rollup's key, which is what bounds it (largest where the key is widest: "
    "`clicks_by_*` are keyed by every column, the breakdowns by 18). For `clicks_by_*` the views' query is a filter whose `count()` reads two columns, so their ratio is mostly the GROUP BY of every click of the day by all its columns.",
    "",
    "| rollup | views' query over the day, ms | differences query, ms | × the views' query |",
    "|---|---:|---:|---:|",
]
for table, d in sorted(r["differences"].items()):
    lines.append(f"| `{table}` | {d['views_ms']:.0f} | {d['ms']:.0f} | {d['vs_views']:.2f} |")
lines += [
    "",
    f"A pass over the day in agreement (every rollup read once): {r['clean_pass_ms']:.0f} ms "
    f"(a `count()` of the day: {r['scan_ms']:.0f} ms).",
    "",
    f"A pass that repairs a write of {r['missed_events']:,} events two views missed (two reads, no settle "
    f"wait, the repair INSERTs): {r['repair_pass_ms'] / 1000:.1f} s, {r['repaired_rows']:,} rollup rows inserted; "
    "the next pass found the day in agreement. A pass runs only for days a failed or resolved write marked.",
]
replace_section(sys.argv[2], "reconcile", lines)
