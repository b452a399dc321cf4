#!/usr/bin/env python3
"""bench/consumer-fetch.sh's raw results → the consumer-fetch section of BENCHMARKS.md."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

from . import REPO
from .sections import replace_section

results_path, out_path = sys.argv[1:3]
ticks = os.sysconf("SC_CLK_TCK")
drains, lags, e2e, load = [], [], None, None
for line in open(results_path):
    fields = line.split()
    if fields[0] == "drain":
        name, consumed, start, end, consumer_ticks, broker_ticks = fields[1:7]
        seconds = float(end) - float(start)
        drains.append((name, " ".join(fields[7:]) or "(librdkafka defaults, CONSUMER_BATCH_MAX_EVENTS=5000)", int(consumed), seconds,
                       int(consumer_ticks) / ticks * 1e6 / max(int(consumed), 1),
                       int(broker_ticks) / ticks / seconds * 100))
    elif fields[0] == "lag":
        lags.append(int(fields[2]))
    elif fields[0] == "e2e":
        e2e = json.loads(" ".join(fields[1:]))
    elif fields[0] == "load":
        load = (fields[1], int(fields[2]), int(fields[3]))

commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
default_rate = next(c / s for n, _, c, s, _, _ in drains if n == "default")
body = [
    "## Consumer fetch settings (`bench/consumer-fetch.sh`)",
    "",
    f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit `{commit}`. One backlog, seeded through the batch",
    "endpoint, drained once per setting by a fresh group into a database of its own (one",
    "consumer, durable tansu). CPU: the consumer's own per event; the broker's share of one core.",
    "",
    "| setting | events | seconds | events/s | vs default | consumer CPU µs/event | broker CPU % |",
    "|---|---:|---:|---:|---:|---:|---:|",
]
for name, env, consumed, seconds, cpu, broker in drains:
    rate = consumed / seconds
    body.append(f"| {name}: `{env}` | {consumed:,} | {seconds:.1f} | **{rate:,.0f}** | {rate / default_rate:.2f} | {cpu:.1f} | {broker:.0f} |")
if load and e2e:
    name, accepted, seconds = load
    body += [
        "",
        f"Under load — the batch endpoint at its peak (8 connections, 100 events a request) for {seconds} s,",
        f"with the `{name}` setting consuming throughout: **{accepted / seconds:,.0f} events/s accepted**; consumer lag",
        f"sampled each second: first {lags[0] if lags else 0:,}, max {max(lags) if lags else 0:,}, last {lags[-1] if lags else 0:,} messages;",
        f"202 → visible in ClickHouse for a 200 events/s probe through the gateway: **p50 {e2e['p50_ms']:.0f} ms, p99 {e2e['p99_ms']:.0f} ms**",
        f"(max {e2e['max_ms']:.0f} ms, {e2e['seen']} of {e2e['sent']} seen).",
        "",
        "Lag samples: " + ", ".join(f"{l:,}" for l in lags),
    ]
replace_section(out_path, "consumer-fetch", body)
print("\n".join(body))
