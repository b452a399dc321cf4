"""bench/quota.sh's raw results → the "quota" section of BENCHMARKS.md.

Usage: bench/report quota RESULTS BENCHMARKS.md COMMIT"""
import statistics
import sys
from datetime import datetime, timezone

from .sections import read_results, replace_section

results_path, out_path, commit = sys.argv[1:4]
rows = read_results(results_path)
settings = rows.pop("settings")
blocks = settings["blocks"].split()


def runs(key, block):
    return [v for k, v in rows.items() if k.startswith(f"{key}_{block}_r")]


def median(key, block, field):
    return statistics.median(v[field] for v in runs(key, block))


when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    "## Quota on a hot account (`bench/quota.sh`)",
    "",
    f"`bench/quota.sh` at {commit}, {when}: one account, 256 connections, in-memory tansu, release "
    f"ingest instances that differ only in `QUOTA_LEASE_BLOCK`; live key (quota) and test key "
    f"(none) interleaved, medians of {settings['rounds']} × {settings['seconds']} s. Ratios are "
    "within one round (live / test of the same round), then the median.",
    "",
    "| `QUOTA_LEASE_BLOCK` | live req/s | test req/s | live / test | ingest CPU µs/req live / test | Postgres CPU µs/req live | leases per run (live) | requests that waited (live) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for block in blocks:
    live, test = runs("live", block), runs("test", block)
    ratio = statistics.median(l["rps"] / t["rps"] for l, t in zip(live, test))
    lines.append(
        f"| {int(block):,} | {median('live', block, 'rps'):,.0f} | {median('test', block, 'rps'):,.0f} "
        f"| **{ratio:.3f}** | {median('live', block, 'cpu_us'):.1f} / {median('test', block, 'cpu_us'):.1f} "
        f"| {median('live', block, 'postgres_cpu_us'):.2f} | {median('live', block, 'leases'):.0f} "
        f"| {median('live', block, 'waits'):.0f} |"
    )
lines += [
    "",
    "A block lasts about a second of the account's traffic, capped at `QUOTA_LEASE_BLOCK`; the",
    "next one is leased in the background once half is spent. With a cap of 1,000 a hot account",
    "at 50k events/s leases 50 times a second, each a Postgres transaction, and a block (20 ms of",
    "traffic) can run out before the next arrives; with 10,000 (now the default) it leases about",
    "5 times a second. The requests that still waited are each run's first: 256 connections",
    "arrive together at an instance that gave its quota back while idle between runs.",
]
replace_section(out_path, "quota", lines)
print("\n".join(lines))
