"""bench/test-build.sh's raw results → the "test-build" section of BENCHMARKS.md.

Usage: bench/report test-build RESULTS BENCHMARKS.md BASELINE CODE ROUNDS"""
import statistics
import sys
import time
from .sections import read_results, replace_section

results, out, baseline, code, rounds = sys.argv[1:6]
r = {k: float(v) for k, v in read_results(results).items()}
rounds = int(rounds)
def later(layout, names):
    seconds = sum(r.get(f"{n}_{layout}_seconds", 0) for n in names)
    mb = r[f"{names[-1]}_{layout}_mb"] - r[f"clean_{layout}_mb"]
    return seconds, mb
old_later = later("baseline", ["chaos", "catalog", "services"])
new_later = later("candidate", ["chaos", "services"])
relink = {l: [r[f"relink_r{i}_{l}_seconds"] for i in range(1, rounds + 1)] for l in ("baseline", "candidate")}
ratio = statistics.median(n / o for n, o in zip(relink["candidate"], relink["baseline"]))
lines = [
    "## Test build (`bench/test-build.sh`)",
    "",
    f"`bench/test-build.sh` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: baseline `{baseline}` "
    f"(sixteen integration test binaries, full debuginfo) against code `{code}` (one `it` binary "
    "plus chaos, line tables for our crates, no debuginfo for dependencies), each from a clean "
    "target folder on this 2-core machine. Sizes are exact; times carry the machine's noise.",
    "",
    "| | baseline | now |",
    "|---|---:|---:|",
    f"| clean test build (`cargo test --workspace --no-run`) | {r['clean_baseline_seconds']:.0f} s, {r['clean_baseline_mb']:,.0f} MB | {r['clean_candidate_seconds']:.0f} s, {r['clean_candidate_mb']:,.0f} MB |",
    f"| deploy/test.sh's later builds (chaos, SQL catalog, services) | +{old_later[0]:.0f} s, +{old_later[1]:,.0f} MB | +{new_later[0]:.0f} s, +{new_later[1]:,.0f} MB |",
    f"| target folder after a whole deploy/test.sh | {r['services_baseline_mb']:,.0f} MB | {r['services_candidate_mb']:,.0f} MB |",
    f"| relink after touching `api/src/lib.rs` (median of {rounds}) | {statistics.median(relink['baseline']):.1f} s | {statistics.median(relink['candidate']):.1f} s |",
    "",
    f"Relink now / baseline: **{ratio:.2f}×** (median of the rounds' ratios; rounds: baseline "
    f"{', '.join(f'{v:.1f}' for v in relink['baseline'])} s, now {', '.join(f'{v:.1f}' for v in relink['candidate'])} s). "
    "Bounded by linking: each of the baseline's sixteen test binaries links all four services "
    "and their dependencies; now one does. The baseline's size is what once ran a CI machine's "
    "disk full (`No space left on device` while compiling).",
]
replace_section(out, "test-build", lines)
print("\n".join(lines))
