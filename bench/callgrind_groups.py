#!/usr/bin/env python3
"""Where two callgrind profiles differ, by what the code is doing: each function's own
(exclusive) instructions are put in the first group whose pattern its name matches, and
divided by the requests each profile served. Usage:
`callgrind_groups.py INGEST_OUT BARE_OUT REQUESTS` prints a Markdown table, heaviest
difference first. Used by bench/profile.sh."""
import re
import subprocess
import sys

# First match wins: the more specific crates before the ones they are built on.
GROUPS = [
    ("request body (serde_json, serde_path_to_error)", r"serde_json|serde_path_to_error|serde::de|serde_core"),
    ("metrics (prometheus)", r"prometheus"),
    ("caches (moka)", r"moka|crossbeam|quanta|tagptr"),
    ("tracing", r"tracing"),
    ("request id, trace and panic layers (tower-http)", r"tower_http"),
    ("router and middleware (axum, tower)", r"axum|tower::|tower_service|matchit"),
    ("HTTP/1 (hyper, http)", r"hyper|http::|httparse|h2::"),
    ("rate limiter (governor)", r"governor"),
    ("ids and times (uuid, chrono, rand)", r"uuid|chrono|rand|getrandom"),
    ("hashing (SipHash, ahash, foldhash)", r"sip|hash::|ahash|foldhash|hashbrown"),
    ("our code (linktrace)", r"linktrace"),
    ("producer (rdkafka)", r"rdkafka|rd_kafka|KafkaSink"),
    ("runtime (tokio, futures)", r"tokio|futures|mio"),
    ("allocator (mimalloc)", r"mi_|_mi_|mimalloc|__rust_alloc|__rust_dealloc|__rust_realloc|alloc::"),
    ("memcpy and friends", r"memmove|memcpy|memset|memcmp|strlen"),
    ("C library", r"libc|ld-linux|pthread|__GI_|__libc"),
]
LINE = re.compile(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(.*)$")


def own_instructions(path):
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    groups = {}
    for line in out.splitlines():
        match = LINE.match(line)
        if not match or "PROGRAM TOTALS" in line or "file:function" in line:
            continue
        # "file:function [binary]": the binary's name says nothing about the code.
        count = int(match.group(1).replace(",", ""))
        name = re.sub(r"\s+\[[^\]]*\]$", "", match.group(2))
        group = next((g for g, pattern in GROUPS if re.search(pattern, name)), "other")
        groups[group] = groups.get(group, 0) + count
    return groups


def main():
    ingest, bare, requests = own_instructions(sys.argv[1]), own_instructions(sys.argv[2]), int(sys.argv[3])
    rows = sorted(
        ((g, ingest.get(g, 0) / requests, bare.get(g, 0) / requests) for g in set(ingest) | set(bare)),
        key=lambda row: row[2] - row[1],
    )
    print("| what (own instructions of its functions) | ingest / request | limit / request | difference |")
    print("|---|---:|---:|---:|")
    for group, mine, limit in rows:
        print(f"| {group} | {mine:,.0f} | {limit:,.0f} | {mine - limit:+,.0f} |")
    print(f"| **total** | {sum(r[1] for r in rows):,.0f} | {sum(r[2] for r in rows):,.0f} | "
          f"{sum(r[1] - r[2] for r in rows):+,.0f} |")


main()
