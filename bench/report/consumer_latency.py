#!/usr/bin/env python3
"""The report of bench/consumer-latency.sh: per setting, the median over rounds of the
202 → visible delay under the batch endpoint's peak, and the consumer's own timings.
Usage: bench/report consumer-latency RESULTS BENCHMARKS_MD CODE LOAD_SECONDS ROUNDS SETTINGS [SECTION]."""
import datetime
import statistics
import sys

from .sections import read_results, replace_section

results, benchmarks, code, load, rounds, settings = sys.argv[1:7]
section = sys.argv[7] if len(sys.argv) > 7 else "consumer-latency"
titles = {
    "consumer-latency": "The 202 → visible delay under the batch endpoint's peak (`bench/consumer-latency.sh`)",
    "cluster": "Single node against the cluster (`bench/cluster.sh`)",
}
rows = read_results(results)
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    f"## {titles.get(section, section)}",
    "",
    f"{when}, code `{code}`. Each run a fresh stack (durable tansu), warmed up, then the batch",
    f"endpoint at its peak (8 connections, 100 events a request) for {load} s with a 200 events/s",
    f"probe through the gateway; medians of {rounds} interleaved rounds. Consumer timings are",
    "per batch, from its /metrics.",
    "",
    "| setting | events/s accepted | 202 → visible p50 / p99 / max ms | batches | events a batch | write ms | commit ms | whole batch ms | server INSERTs/s | ZooKeeper transactions (all nodes) per consumer write |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for line in settings.strip().splitlines():
    name, _, env = line.strip().partition(" ")
    runs = [rows[k] for k in sorted(rows) if k.rsplit("_r", 1)[0] == name]
    if not runs:
        continue
    med = lambda f: statistics.median(f(r) for r in runs)
    per_batch = lambda r, key: r[f"consumer_{key}_sum"] / max(r[f"consumer_{key}_count"], 1) * 1000
    lines.append(
        f"| {name}: `{env}` | {med(lambda r: r['accepted'] / r['seconds']):,.0f} "
        f"| {med(lambda r: r['e2e']['p50_ms']):.0f} / **{med(lambda r: r['e2e']['p99_ms']):.0f}** / {med(lambda r: r['e2e']['max_ms']):.0f} "
        f"| {med(lambda r: r['consumer_batch_size_count']):.0f} "
        f"| {med(lambda r: r['consumer_batch_size_sum'] / max(r['consumer_batch_size_count'], 1)):,.0f} "
        f"| {med(lambda r: per_batch(r, 'write_duration_seconds')):.0f} "
        f"| {med(lambda r: per_batch(r, 'commit_duration_seconds')):.0f} "
        f"| {med(lambda r: per_batch(r, 'batch_duration_seconds')):.0f} "
        f"| {med(lambda r: r.get('server_inserts', 0) / r['seconds']):,.0f} "
        f"| {med(lambda r: r.get('zookeeper_transactions', 0) / max(r['consumer_write_duration_seconds_count'], 1)):,.0f} |"
    )
replace_section(benchmarks, section, lines)
print("\n".join(lines))
