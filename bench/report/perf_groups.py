#!/usr/bin/env python3
"""Groups a `perf record -g` profile of the api by what the code is doing (user-agent
parsing, bot patterns, geo, HTTP, allocator, kernel …): `perf_groups.py PERF_DATA` prints one
JSON object, group → % of samples. Used by bench/redirect.sh."""
import json
import re
import subprocess
import sys

GROUPS = [
    ("bot patterns (isbot's regex)", r"regex|aho_corasick|memchr"),
    ("user agent (woothee) and preview list", r"woothee|is_contained_in|StrSearcher|TwoWay"),
    ("country (maxminddb)", r"maxminddb|GeoDatabase"),
    ("visitor key (SHA-256)", r"sha2|Sha256|compress256"),
    ("UTM and URLs", r"url::|form_urlencoded|idna|utm"),
    ("record JSON (serde_json)", r"serde_json"),
    ("producer (rdkafka)", r"rdkafka|rd_kafka|KafkaSink"),
    ("HTTP (hyper, axum, tower)", r"hyper|axum|tower|http::"),
    ("runtime (tokio)", r"tokio"),
    ("allocator", r"malloc|free|unlink_chunk|_int_|realloc|mi_"),
    ("memcpy", r"memmove|memcpy|memset"),
    ("state clone per request (AppState, moka)", r"AppState|moka"),
]

out = subprocess.run(
    ["perf", "report", "-i", sys.argv[1], "--no-children", "-g", "none", "--sort", "dso,symbol"],
    capture_output=True, text=True, check=True,
).stdout
totals = {}
for line in out.splitlines():
    match = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not match:
        continue
    percent, kind, symbol = float(match.group(1)), match.group(3), match.group(4)
    group = "kernel (network, scheduling)" if kind == "k" else next(
        (name for name, pattern in GROUPS if re.search(pattern, symbol)), "other")
    totals[group] = totals.get(group, 0.0) + percent
print(json.dumps({k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}))
