#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into BENCHMARKS.md."""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

results_path, out_path, seconds, connections, batch = sys.argv[1:6]
wrk, other = {}, {}
for line in open(results_path):
    name, _, rest = line.strip().partition(" ")
    if rest.startswith("{"):
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


repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
bare = wrk["bare"]


def row(label, r, note=""):
    ratio = r["rps"] / bare["rps"] if bare["rps"] else 0
    errors = f'{r["errors"]}' if r["errors"] else "0"
    return f'| {label} | {r["rps"]:,.0f} | {r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | {ratio:.2f} | {errors} | {note} |'


batch_events = int(other["batch_events"][0])
batch_rps = batch_events / wrk["batch"]["seconds"]
def drain(name):
    backlog, consumed, start, end = other[name]
    seconds = float(end) - float(start)
    return int(backlog), int(consumed), seconds, int(consumed) / seconds if seconds > 0 else 0


drain1, drain2 = drain("drain_x1"), drain("drain_x2")
stored_after, backlog_total = (int(x) for x in other["stored_after_drain"])
x2 = [wrk["ingest_x2_a"], wrk["ingest_x2_b"]]
x2_rps = sum(r["rps"] for r in x2)
x2_p99 = max(r["p99_ms"] for r in x2)
def cpu_text(window):
    """Per-program CPU use recorded by `cpu_during`, busiest first."""
    cpu = sorted(wrk.get(f"cpu_{window}", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {pct}%" for name, pct in cpu) or "not recorded"


e2e = wrk["e2e"]
mem = {n: int(other[f"memory_{n}"][0]) / 1024 for n in ("ingest", "consumer", "api")}

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
    "## Ingest (`POST /api/v1/events`, straight to the ingest service)",
    "",
    "| path | requests/s | p50 ms | p99 ms | ratio to bare | errors | what it does per request |",
    "|---|---:|---:|---:|---:|---:|---|",
    row("bare axum baseline", bare, "parse the same JSON, answer 202"),
    row("ingest, plain", wrk["ingest"], "cached auth + link, quota lease, produce with acks=all, 202"),
    row("ingest, dedup path", wrk["ingest_dedup"], "as above + Postgres claim and mark (fresh `entityId` each)"),
    "",
    "What bounds it — the same plain path under other settings:",
    "",
    "| setting | requests/s | p50 ms | p99 ms | ratio to bare | errors | |",
    "|---|---:|---:|---:|---:|---:|---|",
    row("256 connections (8x)", wrk["ingest_c256"], "more requests waiting on the broker at once"),
    row("`KAFKA_PRODUCER_LINGER_MS=0`", wrk["ingest_linger0"], "no producer batching delay"),
    row("`KAFKA_PRODUCER_LINGER_MS=2` (default)", wrk["ingest"], "the row above"),
    row("`KAFKA_PRODUCER_LINGER_MS=5`", wrk["ingest_linger5"], "longer batching delay"),
    row("broker with in-memory storage", wrk["ingest_memory"], "a second tansu, not durable: the service without the durable ack"),
    row("in-memory broker, 256 connections", wrk["ingest_memory_c256"], ""),
    row("in-memory broker, `KAFKA_PRODUCER_LINGER_MS=0`", wrk["ingest_memory_linger0"], ""),
    "",
    "## Other paths",
    "",
    "| measurement | result |",
    "|---|---|",
    f"| batch endpoint (`/events/batch`, {batch} events a request, 8 connections) | **{batch_rps:,.0f} events/s** ({wrk['batch']['rps']:,.1f} requests/s, p99 {wrk['batch']['p99_ms']:.1f} ms) |",
    f"| redirect `GET /l/{{code}}` (click produced and acknowledged before the 302) | **{wrk['redirect']['rps']:,.0f} clicks/s** (p50 {wrk['redirect']['p50_ms']:.2f} ms, p99 {wrk['redirect']['p99_ms']:.2f} ms) |",
    f"| two ingest instances, {int(connections) // 2} connections each (same 2 cores) | **{x2_rps:,.0f} requests/s** in all, p99 {x2_p99:.2f} ms ({x2_rps / wrk['ingest']['rps']:.2f}× one instance) |",
    f"| consumer drain, 1 consumer: backlog → ClickHouse | **{drain1[3]:,.0f} events/s** ({drain1[1]:,} events in {drain1[2]:.1f} s) |",
    f"| consumer drain, 2 consumers in one group (fresh group, first 400k events of the same backlog) | **{drain2[3]:,.0f} events/s** ({drain2[1]:,} events in {drain2[2]:.1f} s; {drain2[3] / drain1[3] if drain1[3] else 0:.2f}× one) |",
    f"| stored by the first drain (plain `count()` over `events`: rows, not distinct ids) | {stored_after:,} rows for {backlog_total:,} answered 202 (more: requests wrk abandoned at each run's deadline were produced, but never answered) |",
    f"| end-to-end delay, 202 at the gateway → visible in ClickHouse (200 events/s probe + 4-connection background load) | **p50 {e2e['p50_ms']:.0f} ms, p99 {e2e['p99_ms']:.0f} ms**, max {e2e['max_ms']:.0f} ms ({e2e['seen']} of {e2e['sent']} seen) |",
    f"| peak memory (VmHWM) | ingest {mem['ingest']:.0f} MiB, consumer {mem['consumer']:.0f} MiB, api {mem['api']:.0f} MiB |",
    "",
    "## Where the time goes",
    "",
    f"CPU use (percent of one core; the machine has {os.cpu_count()} cores) during the plain ingest run: {cpu_text('ingest')}.",
    "",
    f"During the plain ingest run against the in-memory broker: {cpu_text('ingest_memory')}.",
    "",
    f"During the one-consumer drain: {cpu_text('drain')}.",
    "",
    "## Reading these numbers",
    "",
    "- The ratio compares ingest with a handler that does no work; both are driven by the same wrk",
    "  on the same two cores, which wrk, tansu, Postgres and ClickHouse also use.",
    "- The end-to-end delay includes the consumer's batch window (`CONSUMER_BATCH_MAX_WAIT_MS`,",
    "  250 ms) and the probe's 25 ms polling of ClickHouse.",
    "- The consumer was stopped while the load ran, so the drain figures measure a real backlog:",
    "  fetch from tansu (sqlite storage), decode, dedup, write batches of up to 5,000 rows, commit.",
]
# The analytics benchmark (bench/analytics/run.sh) keeps its own section of the same file.
START, END = "<!-- analytics-benchmark:start -->", "<!-- analytics-benchmark:end -->"
try:
    previous = open(out_path).read()
except FileNotFoundError:
    previous = ""
if START in previous and END in previous:
    lines += ["", previous[previous.index(START): previous.index(END) + len(END)]]
open(out_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
