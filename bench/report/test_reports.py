"""The reports, run through their one entry point on raw results of a known shape: each
writes its section of a BENCHMARKS.md with the figures the results imply, and leaves the
rest of the file as it was. Run by deploy/test.sh (`python3 -m pytest bench/report`)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))
from report import REPO, REPORTS  # noqa: E402

HELPERS = {"__init__", "__main__", "sections", "goals", "code_groups", "test_reports"}


def report(*args, check=True):
    return subprocess.run([sys.executable, str(BENCH / "report"), *map(str, args)],
                          capture_output=True, text=True, check=check)


def section(path, name):
    text = Path(path).read_text()
    found = re.search(f"<!-- {name}:start -->\n(.*)\n<!-- {name}:end -->", text, re.S)
    assert found, f"no {name} section in {text!r}"
    return found.group(1)


@pytest.fixture
def benchmarks(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nkept above\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    return path


def results(tmp_path, rows):
    path = tmp_path / "results"
    path.write_text("".join(f"{name} {json.dumps(v) if isinstance(v, (dict, list)) else v}\n"
                            for name, v in rows.items()))
    return path


def test_every_module_is_a_listed_report_or_a_shared_piece():
    modules = {p.stem for p in (BENCH / "report").glob("*.py")}
    listed = {module for module, _ in REPORTS.values()}
    assert modules - HELPERS == listed
    assert not listed & HELPERS


def test_every_bench_script_writes_its_section_through_the_entry_point():
    for script in [*BENCH.glob("*.sh"), *BENCH.glob("*/*.sh")]:
        text = script.read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "replace_section" not in code and "sections import" not in code, \
            f"{script.name} writes BENCHMARKS.md with a report of its own"
        if "BENCHMARKS.md" in code and script.name != "lib.sh":
            assert "bench_report " in code, f"{script.name} names BENCHMARKS.md but calls no report"
        for name in re.findall(r"bench_report ([a-z-]+)", code):
            assert name in REPORTS, f"{script.name} calls an unknown report {name}"


def test_an_unknown_name_lists_the_reports_and_fails():
    answer = report("no-such-report", check=False)
    assert answer.returncode == 2
    for name in REPORTS:
        assert name in answer.stderr


def test_analytics_reproduces_the_committed_section_from_the_committed_results(benchmarks):
    report("analytics", BENCH / "analytics" / "results.json", benchmarks)
    assert section(benchmarks, "analytics-benchmark") == section(REPO / "BENCHMARKS.md", "analytics-benchmark")
    assert section(benchmarks, "other") == "kept"


def test_profile_reproduces_the_committed_section_from_the_committed_profile(benchmarks):
    report("profile", BENCH / "profile.txt", benchmarks)
    assert section(benchmarks, "profile") == section(REPO / "BENCHMARKS.md", "profile")


def test_profile_summary_gives_instructions_per_request():
    lines = report("profile-summary", "bare 2000000", "ingest 3000000", 1000).stdout.splitlines()
    assert lines == ["bare-produce: 2,000 instructions/request",
                     "ingest:       3,000 instructions/request (1.50x)",
                     "above the limit: 1,000 instructions/request"]


def test_drain_gives_each_round_and_the_median_ratio_to_the_bare_consumer(tmp_path, benchmarks):
    rows = {"settings": {"rounds": 3, "backlog": 90000, "seed_seconds": 8}}
    for i, (bare, single, cluster) in enumerate([(10, 20, 40), (10, 25, 50), (10, 12.5, 20)], 1):
        rows[f"bare_{i}"] = {"messages": 90000, "seconds": bare}
        rows[f"consumer_single_{i}"] = {"messages": 90000, "seconds": single}
        rows[f"consumer_cluster_{i}"] = {"messages": 90000, "seconds": cluster}
    report("drain", results(tmp_path, rows), benchmarks, "abc1234")
    text = section(benchmarks, "drain")
    assert "| 1 | 9,000 | 4,500 | 0.50 | 2,250 | 0.25 |" in text
    assert "one backlog of 90,000 events" in text
    assert "one server **0.50×**, cluster **0.25×**" in text  # medians of 0.5/0.4/0.8 and 0.25/0.2/0.5
    assert section(benchmarks, "other") == "kept"


def test_claim_statement_gives_medians_and_the_median_of_the_rounds_ratios(tmp_path, benchmarks):
    rows = {"unprepared_r1": 2.0, "prepared_r1": 1.0, "unprepared_r2": 4.0, "prepared_r2": 1.0,
            "unprepared_r3": 3.0, "prepared_r3": 2.4}
    report("claim-statement", results(tmp_path, rows), benchmarks, 32, 5, 3, "abc1234", 1234567)
    text = section(benchmarks, "claim-statement")
    assert "| 3.000 | 2.00, 4.00, 3.00 |" in text
    assert "| 1.000 | 1.00, 1.00, 2.40 |" in text
    assert "**0.50×**" in text  # ratios 0.5, 0.25, 0.8
    assert "held 1,234,567 claims" in text


def test_quota_gives_each_block_its_live_to_test_ratio(tmp_path, benchmarks):
    run = lambda rps, leases: {"rps": rps, "cpu_us": 10.0, "postgres_cpu_us": 0.5, "leases": leases, "waits": 1}
    rows = {"settings": {"blocks": "1000 10000", "rounds": 2, "seconds": 10},
            "live_1000_r1": run(900, 50), "test_1000_r1": run(1000, 0),
            "live_1000_r2": run(700, 70), "test_1000_r2": run(1000, 0),
            "live_10000_r1": run(990, 5), "test_10000_r1": run(1000, 0),
            "live_10000_r2": run(1010, 5), "test_10000_r2": run(1000, 0)}
    report("quota", results(tmp_path, rows), benchmarks, "abc1234")
    text = section(benchmarks, "quota")
    assert "| 1,000 | 800 | 1,000 | **0.800** |" in text
    assert "| 10,000 | 1,000 | 1,000 | **1.000** |" in text
    assert "| 60 | 1 |" in text  # the 1,000 block's leases, median of 50 and 70


def test_reconcile_gives_each_rollup_and_the_passes(tmp_path, benchmarks):
    raw = {"server": "18.16.1", "events": 2000000, "write_ms": 42000, "rounds": 5,
           "differences": {"event_counts_daily": {"views_ms": 100, "ms": 150, "vs_views": 1.5}},
           "clean_pass_ms": 900, "scan_ms": 30, "missed_events": 6400, "repair_pass_ms": 2500,
           "repaired_rows": 321}
    path = tmp_path / "reconcile.json"
    path.write_text(json.dumps(raw))
    report("reconcile", path, benchmarks, "abc1234")
    text = section(benchmarks, "reconcile")
    assert "| `event_counts_daily` | 100 | 150 | 1.50 |" in text
    assert "a day of 2,000,000 events (written through the views in 42.0 s)" in text
    assert "6,400 events two views missed" in text and "2.5 s, 321 rollup rows" in text


def test_a_second_run_replaces_its_section_and_keeps_the_others(tmp_path, benchmarks):
    rows = {"unprepared_r1": 2.0, "prepared_r1": 1.0}
    report("claim-statement", results(tmp_path, rows), benchmarks, 32, 5, 1, "first", 1)
    rows = {"unprepared_r1": 3.0, "prepared_r1": 1.5}
    report("claim-statement", results(tmp_path, rows), benchmarks, 32, 5, 1, "second", 1)
    text = benchmarks.read_text()
    assert text.count("<!-- claim-statement:start -->") == 1
    assert "code `second`" in text and "code `first`" not in text
    assert text.startswith("# Benchmarks\n\nkept above\n") and section(benchmarks, "other") == "kept"
