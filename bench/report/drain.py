"""bench/drain.sh's raw results → the "drain" section of BENCHMARKS.md.

Usage: bench/report drain RESULTS BENCHMARKS.md COMMIT"""
import statistics
import sys
from .sections import read_results, replace_section

r = read_results(sys.argv[1])
rounds = r["settings"]["rounds"]
def rate(name):
    return r[name]["messages"] / r[name]["seconds"]
rows, ratios = [], {"single": [], "cluster": []}
for i in range(1, rounds + 1):
    bare = rate(f"bare_{i}")
    row = [f"{bare:,.0f}"]
    for setting in ["single", "cluster"]:
        one = rate(f"consumer_{setting}_{i}")
        ratios[setting].append(one / bare)
        row += [f"{one:,.0f}", f"{one / bare:.2f}"]
    rows.append(f"| {i} | " + " | ".join(row) + " |")
lines = [
    "## Consumer drain against a bare consumer (`bench/drain.sh`)",
    "",
    f"At `{sys.argv[3]}`: one backlog of {r['settings']['backlog']:,} events (the batch endpoint for "
    f"{r['settings']['seed_seconds']} s), drained in {rounds} interleaved rounds by a bare consumer (the consumer's "
    "client settings, every message discarded: the consumer's physical limit on this broker) and by the consumer "
    "into fresh databases, on this machine's ClickHouse server and on a 2×2 cluster of 18.16 servers with "
    "ZooKeeper on the same two cores. Events/s from the first message to the last read (bare) or written "
    "(consumer). Goal: ≥ 0.9× the bare consumer.",
    "",
    "| round | bare consumer, events/s | consumer, one server | × bare | consumer, cluster | × bare |",
    "|---|---:|---:|---:|---:|---:|",
    *rows,
    "",
    f"Median ratio: one server **{statistics.median(ratios['single']):.2f}×**, cluster "
    f"**{statistics.median(ratios['cluster']):.2f}×**. The bare consumer is bounded by tansu serving fetches; the "
    "consumer adds its ClickHouse writes (one INSERT per partition run) and its stream ledger in Postgres, and on "
    "the cluster the quorum inserts of four servers and ZooKeeper, all on the same two cores as the broker.",
]
replace_section(sys.argv[2], "drain", lines)
