#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into BENCHMARKS.md."""
import json
import re
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

from . import REPO
from .goals import GOALS

results_path, out_path, seconds, connections, batch = sys.argv[1:6]
wrk, other, lags = {}, {}, []
for line in open(results_path):
    name, _, rest = line.strip().partition(" ")
    if name == "lag_sample":
        lags.append(int(rest))
    elif rest.startswith("{"):
        wrk[name] = json.loads(rest)
    else:
        other[name] = rest.split()


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_gib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
# The benchmarks' own outputs (an earlier benchmark of the same code) do not make it dirty.
dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", ".",
                        ":!BENCHMARKS.md", ":!bench/*.txt", ":!bench/results.json"],
                       capture_output=True, text=True).stdout.strip()
from statistics import median


def round_order(key):
    """A round's key (`NAME_rN`) by its round number: `_r10` after `_r9`, not after `_r1`."""
    name, _, n = key.rpartition("_r")
    return name, int(n) if n.isdigit() else 0


def rounds(prefix):
    """The runs of one measurement, one per round (bench/run.sh interleaves them)."""
    return [wrk[k] for k in rounds_named(prefix)]


def rps(prefix):
    return median(r["rps"] for r in rounds(prefix))


def p99(prefix):
    return median(r["p99_ms"] for r in rounds(prefix))


def cpu_us(prefix, whose="cpu_us"):
    values = [float(other[k][0]) for k in sorted(other, key=round_order) if k.startswith(f"{whose}_{prefix}_r")]
    return median(values) if values else 0.0


def broker_us(prefix):
    """The broker's own CPU per request of `prefix`'s runs."""
    return cpu_us(prefix, "broker_us")


def paired(a, b, value):
    """`a` against `b`: the ratio within each round (the two ran next to each other), then
    the median over rounds, so that drift between rounds cancels."""
    pairs = [value(x) / value(y) for x, y in zip(rounds_named(a), rounds_named(b)) if value(y)]
    return median(pairs) if pairs else 0.0


def round_ratios(broker, conns):
    """Each round's ingest / limit requests/s, in round order, as text."""
    ingest, limit = f"ingest{broker}_c{conns}", f"limit{broker}_c{conns}"
    return ", ".join(f"{wrk[x]['rps'] / wrk[y]['rps']:.2f}"
                     for x, y in zip(rounds_named(ingest), rounds_named(limit)) if wrk[y]["rps"])


def live_rounds():
    """Each round's live / test requests/s and CPU per request, with the leases the live
    run took and its requests that waited for Postgres, as text."""
    parts = []
    for n, (live, test) in enumerate(zip(rounds_named("quota_live"), rounds_named("quota_test")), 1):
        if not wrk[test]["rps"]:
            continue
        cpu = lambda k: other.get(f"cpu_us_{k}", ["?"])[0]
        leases = other.get(f"quota_leases_r{n}", ["?"])[0]
        waits = other.get(f"quota_waits_r{n}", ["?"])[0]
        parts.append(f"{wrk[live]['rps'] / wrk[test]['rps']:.2f} ({cpu(live)} / {cpu(test)} µs, "
                     f"{leases} leases, {waits} waited)")
    return "; ".join(parts)


def rounds_named(prefix):
    return sorted((k for k in wrk if k.startswith(prefix + "_r")), key=round_order)


def speed(a, b):
    """Requests/s of `a` against `b`, paired by round."""
    return paired(a, b, lambda k: wrk[k]["rps"])


def cpu_ratio(a, b):
    """CPU per request of `a` against `b`, paired by round."""
    return paired(a, b, lambda k: float(other.get(f"cpu_us_{k}", [0])[0]))


ERROR_KINDS = [("non_2xx", "non-2xx"), ("connect_errors", "connect"), ("read_errors", "read"),
               ("write_errors", "write"), ("timeouts", "timeout")]


def error_text(*prefixes):
    """The errors of `prefixes`' runs, with their kinds where wrk told them apart."""
    runs = [r for prefix in prefixes for r in rounds(prefix)]
    counts = [(sum(r.get(key, 0) for r in runs), label) for key, label in ERROR_KINDS]
    kinds = [f"{count} {label}" for count, label in counts if count]
    total = sum(r["errors"] for r in runs)
    return f"{total} ({', '.join(kinds)})" if kinds else f"{total}"


def limit_row(label, broker, conns):
    ingest, limit = f"ingest{broker}_c{conns}", f"limit{broker}_c{conns}"
    return (f"| {label}, {conns} | {rps(ingest):,.0f} | {rps(limit):,.0f} | **{speed(ingest, limit):.2f}** "
            f"| {p99(ingest):.1f} / {p99(limit):.1f} | {cpu_us(ingest):.0f} | {cpu_us(limit):.0f} "
            f"| {cpu_us(ingest) - cpu_us(limit):.0f} | {broker_us(ingest):.0f} / {broker_us(limit):.0f} "
            f"| {error_text(ingest, limit)} |")


batch_events = int(other["batch_events"][0])
batch_rps = batch_events / wrk["batch"]["seconds"]
def drain(name):
    backlog, consumed, start, end = other[name]
    seconds = float(end) - float(start)
    return int(backlog), int(consumed), seconds, int(consumed) / seconds if seconds > 0 else 0


drain1, drain2 = drain("drain_x1"), drain("drain_x2")
stored_after, backlog_total = (int(x) for x in other["stored_after_drain"])
# The first drain has a deadline (bench/run.sh): one that ran out leaves the consumer behind
# for what follows, and its rows short of the backlog.
drained = drain1[1] >= drain1[0]
x2 = [wrk["ingest_x2_a"], wrk["ingest_x2_b"]]
x2_rps = sum(r["rps"] for r in x2)
x2_p99 = max(r["p99_ms"] for r in x2)
def cpu_text(window):
    """Per-program CPU use recorded by `cpu_during`, busiest first."""
    cpu = sorted(wrk.get(f"cpu_{window}", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {pct}%" for name, pct in cpu) or "not recorded"


e2e = wrk["e2e"]
load_events, load_seconds = (int(x) for x in other["load_batch_events"])
load_rps = load_events / load_seconds
# Keeping up: the lag's trend (least squares over the samples, messages per second) stays
# under 5% of the accepted rate. Samples sway by up to a batch as the consumer takes and
# writes one; a consumer short of the rate shows as a steady climb.
def slope(samples):
    n = len(samples)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(samples) / n
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(samples)) / sum((x - mean_x) ** 2 for x in range(n))


lag_trend = slope(lags)
keeps_up = bool(lags) and lag_trend < GOALS["ingest"]["lag_trend_share"] * load_rps
mem = {n: int(other[f"memory_{n}"][0]) / 1024 for n in ("ingest", "consumer", "api")}

lag_ok = keeps_up and drained
g = GOALS["ingest"]
goals = [
    (f"ingest ≥ {g['speed_vs_limit']}× the limit, durable broker, 32 connections", f"{speed('ingest_c32', 'limit_c32'):.3f}×", speed('ingest_c32', 'limit_c32') >= g["speed_vs_limit"]),
    ("same, durable, 256", f"{speed('ingest_c256', 'limit_c256'):.3f}×", speed('ingest_c256', 'limit_c256') >= g["speed_vs_limit"]),
    ("same, in-memory, 32", f"{speed('ingest_memory_c32', 'limit_memory_c32'):.3f}×", speed('ingest_memory_c32', 'limit_memory_c32') >= g["speed_vs_limit"]),
    ("same, in-memory, 256", f"{speed('ingest_memory_c256', 'limit_memory_c256'):.3f}×", speed('ingest_memory_c256', 'limit_memory_c256') >= g["speed_vs_limit"]),
    (f"ingest CPU per event ≤ {g['cpu_per_event_vs_limit']}× the limit's (durable, 32)", f"{cpu_us('ingest_c32'):.1f} vs {cpu_us('limit_c32'):.1f} µs: {cpu_ratio('ingest_c32', 'limit_c32'):.2f}×", cpu_ratio('ingest_c32', 'limit_c32') <= g["cpu_per_event_vs_limit"]),
    (f"live key within {round((1 - g['live_vs_test_key']) * 100)}% of a test key", f"{speed('quota_live', 'quota_test'):.3f}×", speed('quota_live', 'quota_test') >= g["live_vs_test_key"]),
    (f"dedup path ≥ {g['dedup_vs_plain']}× the plain path", f"{speed('dedup', 'plain'):.3f}×", speed('dedup', 'plain') >= g["dedup_vs_plain"]),
    ("the consumer keeps up with the batch endpoint (lag flat while it runs at its peak)", f"lag trend {lag_trend:+,.0f} messages/s at {load_rps:,.0f} events/s" + ("" if drained else " (not measured: the drain before it did not finish)"), lag_ok),
    (f"202 → visible p99 < {g['visible_p99_ms'] / 1000:g} s meanwhile", f"{e2e['p99_ms']:.0f} ms", drained and e2e['p99_ms'] < g["visible_p99_ms"]),
]

lines = [
    "# Benchmarks",
    "",
    "Produced by `bench/run.sh` — rerun it to refresh this file. Every figure below comes",
    "from that one run; nothing is copied from elsewhere.",
    "",
    f"- **When**: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    f"- **Commit**: `{commit}`{' (with uncommitted changes)' if dirty else ''}",
    f"- **Machine**: {os.cpu_count()} cores ({cpu_model()}), {mem_gib():.0f} GiB; load generator, broker, ClickHouse,",
    "  Postgres and the services all share these cores over loopback.",
    f"- **Command**: `bench/run.sh` (wrk, 2 threads, {connections} connections, {seconds} s per measurement;",
    "  release build; "
    + ("idempotent" if os.environ.get("KAFKA_PRODUCER_IDEMPOTENT", "true") == "true" else "plain (non-idempotent)")
    + " producer, acks=all; tansu with durable sqlite storage; ClickHouse 18.16).",
    "",
    "## Ingest against its physical limit (`POST /api/v1/events`, straight to the service)",
    "",
    "The limit is `bare-produce` (bench/src/bin): an axum handler that parses the same body,",
    "produces it with ingest's rdkafka settings, awaits the broker's acknowledgement and answers",
    "202 — any service that answers after the ack is bound by it. Medians of "
    f"{len(rounds('ingest_c32'))} interleaved rounds at 32 connections and {len(rounds('ingest_c256'))} at 256, "
    f"runs of {rounds('ingest_c32')[0]['seconds']:.0f} s each (the order alternating from round to round); a",
    "ratio is taken within each round, then its median over the rounds.",
    "CPU is each process's own utime+stime per request: the service's, and the broker's",
    "during the same run.",
    "",
    "| broker, connections | ingest req/s | limit req/s | ingest / limit | p99 ms ingest / limit | ingest CPU µs/req | limit CPU µs/req | ingest's own µs/req | broker CPU µs/req, ingest / limit | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    limit_row("durable (sqlite)", "", 32),
    limit_row("durable (sqlite)", "", 256),
    limit_row("in-memory", "_memory", 32),
    limit_row("in-memory", "_memory", 256),
    "",
    "Each round's ingest / limit, in order: durable 32: " + round_ratios("", 32)
    + "; durable 256: " + round_ratios("", 256) + "; in-memory 32: " + round_ratios("_memory", 32)
    + "; in-memory 256: " + round_ratios("_memory", 256) + ".",
    "",
    "| hot path | requests/s | p99 ms | CPU µs/req | ratio |",
    "|---|---:|---:|---:|---:|",
    f"| live key, one account, 256 connections, in-memory broker (quota lease) | {rps('quota_live'):,.0f} | {p99('quota_live'):.1f} | {cpu_us('quota_live'):.0f} | {speed('quota_live', 'quota_test'):.2f} of the test key |",
    f"| test key, same (no quota) | {rps('quota_test'):,.0f} | {p99('quota_test'):.1f} | {cpu_us('quota_test'):.0f} | |",
    f"| dedup path, a fresh `entityId` each ({connections} connections, durable broker) | {rps('dedup'):,.0f} | {p99('dedup'):.1f} | {cpu_us('dedup'):.0f} | {speed('dedup', 'plain'):.2f} of the plain path |",
    f"| plain path, same | {rps('plain'):,.0f} | {p99('plain'):.1f} | {cpu_us('plain'):.0f} | |",
    "",
    "Each round's live / test, in order (CPU µs per request live / test, the quota leases the",
    "live run took, its requests that waited for Postgres): " + live_rounds() + ".",
    "",
    "## Issue 16's goals in this run",
    "",
    "| goal | this run | |",
    "|---|---|---|",
    *[f"| {goal} | {figure} | {'**met**' if met else 'not met'} |" for goal, figure, met in goals],
    "",
    "What bounds these figures, with the profiles to show it: at 32 connections both services",
    "wait on the broker's acknowledgement (the cores are not busy: *Where the time goes*). At 256",
    "connections ingest, wrk and the broker share two cores, so ingest's throughput is its CPU per",
    "request against the limit handler's — `bench/load-profile.sh` (sections below) splits both by",
    "what the code does under that load, and `bench/profile.sh` counts the instructions — plus the",
    "broker's own CPU per event (the column above). Ingest's record (ids, account, time, request",
    "id: 287 bytes in layout 2, 329 in layout 1, against the limit's 67) is larger, and what that",
    "costs the broker is measured apart: `LOAD_PADDED_LIMIT_BYTES=287 bench/load-profile.sh` runs",
    "the limit handler with its values padded to that size beside the other two (its *padded limit / limit* and *ingest /",
    "padded limit* rows; on the durable broker the padded limit has cost it from the same to a",
    "fifth more per event from run to run, and where it cost more, ingest ran at the padded",
    "limit's speed). A live key differs from a test key by the quota's counters on every event",
    "and a lease about every second of an account's traffic, off the request path",
    "(`bench/quota.sh` counts the leases and the requests that waited for Postgres). The",
    "in-memory broker at 256 connections is the most CPU-bound case, and the noisiest: the same",
    "service's CPU per request moves by a third between neighbouring 5 s runs, so its rounds'",
    "ratios spread by ±0.1, and more for the live key's.",
    *([] if e2e['p99_ms'] < 1000 else [
        "The 202 → visible delay under that load is the consumer's batch window",
        "(`CONSUMER_BATCH_MAX_WAIT_MS`, 250 ms) plus a batch's ClickHouse write (its",
        "partitions written at once), both slowed by the same two cores running wrk, ingest",
        "and the broker at the batch endpoint's peak; without that load it is under 1 s (the",
        "consumer fetch section).",
    ]),
    "",
    "## Other paths",
    "",
    "| measurement | result |",
    "|---|---|",
    f"| batch endpoint (`/events/batch`, {batch} events a request, 8 connections) | **{batch_rps:,.0f} events/s** ({wrk['batch']['rps']:,.1f} requests/s, p99 {wrk['batch']['p99_ms']:.1f} ms) |",
    f"| redirect `GET /l/{{code}}` (bare GET; the 302 does not wait for the broker; enriched clicks: `bench/redirect.sh`) | **{wrk['redirect']['rps']:,.0f} clicks/s** (p50 {wrk['redirect']['p50_ms']:.2f} ms, p99 {wrk['redirect']['p99_ms']:.2f} ms) |",
    f"| two ingest instances, {int(connections) // 2} connections each (same 2 cores) | **{x2_rps:,.0f} requests/s** in all, p99 {x2_p99:.2f} ms ({x2_rps / rps('ingest_c32'):.2f}× one instance at 32 connections) |",
    f"| consumer drain, 1 consumer: backlog → ClickHouse | **{drain1[3]:,.0f} events/s** ({drain1[1]:,} events in {drain1[2]:.1f} s) |",
    f"| consumer drain, 2 consumers in one group (fresh group, first 400k events of the same backlog) | **{drain2[3]:,.0f} events/s** ({drain2[1]:,} events in {drain2[2]:.1f} s; {drain2[3] / drain1[3] if drain1[3] else 0:.2f}× one) |",
    f"| stored by the first drain (plain `count()` over `events`: rows, not distinct ids) | {stored_after:,} rows for {backlog_total:,} answered 202 " + ("(more: requests wrk abandoned at each run's deadline were produced, but never answered) |" if drained else f"(**the drain did not finish**: it consumed {drain1[1]:,} of {drain1[0]:,} events before its deadline) |"),
    f"| the consumer under the batch endpoint's peak (8 connections, {batch} events a request, {load_seconds} s, consumer running) | **{load_rps:,.0f} events/s accepted**; consumer lag every second: first {lags[0] if lags else 0:,}, max {max(lags, default=0):,}, last {lags[-1] if lags else 0:,} messages; trend {lag_trend:+,.0f} messages/s ({lag_trend / load_rps if load_rps else 0:+.1%} of the rate): **{'keeps up' if lag_ok else 'falls behind' if drained else 'not measured: the drain before it did not finish'}** |",
    f"| end-to-end delay meanwhile, 202 at the gateway → visible in ClickHouse (200 events/s probe) | **p50 {e2e['p50_ms']:.0f} ms, p99 {e2e['p99_ms']:.0f} ms**, max {e2e['max_ms']:.0f} ms ({e2e['seen']} of {e2e['sent']} seen) |",
    f"| peak memory (VmHWM) | ingest {mem['ingest']:.0f} MiB, consumer {mem['consumer']:.0f} MiB, api {mem['api']:.0f} MiB |",
    "",
    "## Where the time goes",
    "",
    f"CPU use (percent of one core; the machine has {os.cpu_count()} cores) during the plain ingest run (durable broker, 32 connections): {cpu_text('ingest')}.",
    "",
    f"During the limit handler's run beside it: {cpu_text('limit')}.",
    "",
    f"During the plain ingest run against the in-memory broker: {cpu_text('ingest_memory')}; the limit handler's: {cpu_text('limit_memory')}.",
    "",
    f"During the one-consumer drain: {cpu_text('drain')}.",
    "",
    "## Reading these numbers",
    "",
    "- Ingest and the limit handler are driven by the same wrk on the same two cores, which wrk,",
    "  tansu, Postgres and ClickHouse also use; runs are interleaved so drift hits both alike.",
    "- Instructions per request, which repeat on this noisy machine, come from `bench/profile.sh`",
    "  (callgrind): see the profile section of this file.",
    "- The end-to-end delay includes the consumer's batch window (`CONSUMER_BATCH_MAX_WAIT_MS`,",
    "  250 ms) and the probe's 25 ms polling of ClickHouse.",
    "- The consumer was stopped while the load ran, so the drain figures measure a real backlog:",
    "  fetch from tansu (sqlite storage), decode, dedup, write batches of up to 20,000 rows (`CONSUMER_BATCH_MAX_EVENTS`), commit.",
]
# Other benchmarks (bench/analytics/run.sh, bench/profile.sh, bench/load-profile.sh, bench/quota.sh,
# bench/claim-statement.sh, …) keep their own marked sections of the same file (bench/report/sections.py):
# every one found is kept, in its order.
try:
    previous = open(out_path).read()
except FileNotFoundError:
    previous = ""
for section in dict.fromkeys(re.findall(r"<!-- ([A-Za-z0-9_-]+):start -->", previous)):
    START, END = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    if START in previous and END in previous:
        lines += ["", previous[previous.index(START): previous.index(END) + len(END)]]
open(out_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))


def ratio(a, b):
    return round(speed(a, b), 3)


# The same figures for tools: bench/results.json, beside BENCHMARKS.md.
results = {
    "ingest_to_limit": {
        "durable_32": ratio("ingest_c32", "limit_c32"),
        "durable_256": ratio("ingest_c256", "limit_c256"),
        "memory_32": ratio("ingest_memory_c32", "limit_memory_c32"),
        "memory_256": ratio("ingest_memory_c256", "limit_memory_c256"),
    },
    "dedup_to_plain": ratio("dedup", "plain"),
    "live_to_test": ratio("quota_live", "quota_test"),
    "cpu_us_per_event": {
        "ingest": round(cpu_us("ingest_c32"), 1),
        "limit": round(cpu_us("limit_c32"), 1),
        # The durable broker's own CPU per event during ingest's runs (32 connections).
        "broker": round(broker_us("ingest_c32"), 1),
    },
    "consumer_events_per_s": round(drain1[3], 1),
    # The consumer running while the batch endpoint is at its peak (bench/run.sh phase 6).
    "consumer_under_batch_peak": {
        "batch_events_per_s": round(load_rps, 1),
        "lag_first": lags[0] if lags else 0,
        "lag_max": max(lags, default=0),
        "lag_last": lags[-1] if lags else 0,
        "lag_trend_per_s": round(lag_trend, 1),
        "keeps_up": keeps_up,
    },
    "batch_events_per_s": round(batch_rps, 1),
    "e2e_p99_ms": round(e2e["p99_ms"], 1),
    "commit": commit,
    "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
with open(os.path.join(os.path.dirname(os.path.abspath(out_path)), "bench", "results.json"), "w") as f:
    json.dump(results, f, indent=2)
    f.write("\n")
