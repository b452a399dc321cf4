"""bench/first-run.sh's section of BENCHMARKS.md: a first deploy/up.sh's two builds from
nothing, before and now, and what the broker built for a short first run does at run time.
Usage: bench/report first-run RESULTS BENCHMARKS.md CODE LOAD"""

import os
import statistics
import sys
import time

from .goals import GOALS
from .sections import read_results, replace_section

results, out, code, load = sys.argv[1:5]
r = read_results(results)
rounds = int(r["rounds"])


def values(variant, name):
    return [float(r[f"{variant}_r{i}_{name}"]) for i in range(1, rounds + 1)]


def median(variant, name):
    return statistics.median(values(variant, name))


def ratio(name):
    return statistics.median(
        n / b for n, b in zip(values("now", name), values("before", name))
    )


limit = GOALS["first_run"]["max_seconds"]
both_now = median("now", "both_seconds")
lines = [
    "## First run (`bench/first-run.sh`)",
    "",
    f"`bench/first-run.sh` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code `{code}`, "
    f"{rounds} round(s), the two variants interleaved. What bounds a first `deploy/up.sh`: its "
    "two builds, run at once as `up.sh` runs them (the broker's `cargo install` and the "
    "services' release build), from an empty cargo home (every crate downloaded again) and "
    "empty target folders, on this 2-core machine. *before*: tansu with its release defaults "
    "(opt-level 3) and the postgres and libsql engines, dependencies with debuginfo; *now*: "
    f"`deploy/lib.sh`'s `tansu_cargo_install` ({r['now_broker']}) and the workspace's release "
    "profile (dependencies without debuginfo).",
    "",
    "| | before | now | now / before |",
    "|---|---:|---:|---:|",
    f"| broker built (s) | {median('before', 'broker_seconds'):.0f} | {median('now', 'broker_seconds'):.0f} | {ratio('broker_seconds'):.2f}× |",
    f"| services built (s) | {median('before', 'services_seconds'):.0f} | {median('now', 'services_seconds'):.0f} | {ratio('services_seconds'):.2f}× |",
    f"| **both built** (s) | {median('before', 'both_seconds'):.0f} | **{both_now:.0f}** | {ratio('both_seconds'):.2f}× |",
    f"| broker's crates compiled | {median('before', 'crates'):.0f} | {median('now', 'crates'):.0f} | |",
    f"| broker's produce load: records stored / s | {median('before', 'records_per_sec'):,.0f} | {median('now', 'records_per_sec'):,.0f} | {ratio('records_per_sec'):.2f}× |",
] + (
    [f"| broker's CPU under that load in its C code (sqlite), perf | {median('before', 'c_share'):.0f}% | {median('now', 'c_share'):.0f}% | |"]
    if "before_r1_c_share" in r
    else []
) + [
    "",
    f"Goal (`goals.toml`): both builds within {limit:.0f} s, so that a first `up.sh`, whose "
    f"other steps take seconds (packages, ClickHouse, the services' start), stays under "
    f"10 minutes: **{'met' if both_now <= limit else 'not met'}** ({both_now:.0f} s). "
    "Bounded by the two cores: both builds run side by side from start to end. Produce load: "
    f"{load}, one fixed client (the *before* build) against each broker in turn, counted in "
    "the broker's sqlite file.",
] + (
    [
        "",
        "The broker rows are from a later pass over the same builds (`FIRST_RUN_REUSE=1`), "
        "which also profiles each broker under the load.",
    ]
    if os.environ.get("FIRST_RUN_REUSE") == "1"
    else []
)
replace_section(out, "first-run", lines)
print("\n".join(lines))
