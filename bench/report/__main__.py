"""python3 bench/report NAME ARGS...: runs the report NAME (see report/__init__.py)."""
import runpy
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # bench/, so that `report` imports
from report import REPORTS  # noqa: E402

if len(sys.argv) < 2 or sys.argv[1] not in REPORTS:
    print("usage: python3 bench/report NAME ARGS...\n", file=sys.stderr)
    for name, (_, what) in REPORTS.items():
        print(f"  {name:18s} {what}", file=sys.stderr)
    sys.exit(0 if len(sys.argv) < 2 else 2)
name = sys.argv[1]
sys.argv = [f"bench/report {name}", *sys.argv[2:]]
runpy.run_module(f"report.{REPORTS[name][0]}", run_name="__main__", alter_sys=True)
