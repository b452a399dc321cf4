"""The benchmarks' reports: one module per report, run through one entry point.

    python3 bench/report NAME ARGS...      (bench/lib.sh: bench_report NAME ARGS...)

A report reads what its script measured (raw results: one `NAME PAYLOAD` line per
measurement, `sections.read_results`) and writes its own marked section of BENCHMARKS.md
(`sections.replace_section`); its goals come from bench/goals.toml (`goals.GOALS`). The
tools (`perf-groups`, `callgrind-groups`, `broker-share`) group a profile by code and print
it. `python3 bench/report` with no name lists them all."""
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent  # bench/: goals.toml, the scripts
REPO = BENCH.parent  # BENCHMARKS.md, and the git repository the reports name commits of

# name → (module, what it reads and writes)
REPORTS = {
    "run": ("run", "bench/run.sh: the top of BENCHMARKS.md and bench/results.json"),
    "analytics": ("analytics", "bench/analytics/run.sh: the analytics-benchmark section"),
    "claim-statement": ("claim_statement", "bench/claim-statement.sh: the claim-statement section"),
    "consumer-fetch": ("consumer_fetch", "bench/consumer-fetch.sh: the consumer-fetch section"),
    "consumer-latency": ("consumer_latency", "bench/consumer-latency.sh and bench/cluster.sh: their sections"),
    "drain": ("drain", "bench/drain.sh: the drain section"),
    "entity-claims": ("entity_claims", "bench/entity-claims.sh: the entity-claims section"),
    "first-run": ("first_run", "bench/first-run.sh: the first-run section"),
    "load-profile": ("load_profile", "bench/load-profile.sh: the load-profile section"),
    "profile": ("profile", "bench/profile.sh: the profile section, from bench/profile.txt"),
    "profile-summary": ("profile_summary", "bench/profile.sh: instructions per request, the handlers' totals"),
    "quota": ("quota", "bench/quota.sh: the quota section"),
    "reconcile": ("reconcile", "bench/reconcile.sh: the reconcile section"),
    "redirect": ("redirect", "bench/redirect.sh: the redirect section"),
    "round-spread": ("round_spread", "earlier bench/run.sh runs: how often one run misses a goal by chance"),
    "test-build": ("build_times", "bench/test-build.sh: the test-build section"),
    "webhooks": ("webhooks", "bench/webhooks.sh: the webhooks section"),
    "perf-groups": ("perf_groups", "a perf profile, its samples grouped by code (JSON)"),
    "callgrind-groups": ("callgrind_groups", "two callgrind profiles, instructions per request by code"),
    "broker-share": ("broker_share", "a perf report on stdin: the broker's share in its C code"),
}
