"""Every query of the Grafana dashboard (deploy/grafana/dashboards/*.json) returns series
from Debian's Prometheus scraping the running stack's services.

Run by deploy/test.sh while the stack it started for schemathesis is up (after schemathesis
has sent it traffic): `python3 -m pytest integration/grafana`. The scrape jobs have the
names compose's Prometheus gives them (deploy/prometheus/prometheus.yml), pointed at the
local services' operational ports (INGEST_ADDR, API_ADDR, CONSUMER_ADDR, WEBHOOKS_ADDR).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOBS = {
    "ingest": os.environ.get("INGEST_ADDR", "127.0.0.1:8081"),
    "api": os.environ.get("API_ADDR", "127.0.0.1:8082"),
    "consumer": os.environ.get("CONSUMER_ADDR", "127.0.0.1:8083"),
    "webhooks": os.environ.get("WEBHOOKS_ADDR", "127.0.0.1:8084"),
}


def panel_queries():
    for path in sorted((REPO / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield pytest.param(target["expr"], id=f"{panel['title']}: {target['expr']}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def prometheus():
    binary = shutil.which("prometheus")
    if not binary:
        pytest.fail("Debian's prometheus is not installed (deploy/test.sh installs it)")
    for job, address in JOBS.items():
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5):
            pass  # the stack must be up: this is a test of its metrics
    folder = Path(tempfile.mkdtemp(prefix="lt-prometheus-"))
    config = "global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(
        f"  - job_name: {job}\n    static_configs: [{{ targets: ['{address}'] }}]\n"
        for job, address in JOBS.items()
    )
    (folder / "prometheus.yml").write_text(config)
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(folder / "prometheus.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                targets = get(f"{base}/api/v1/targets")["data"]["activeTargets"]
                # Every job up, and scraped often enough for a rate over [1m] (two samples).
                if len(targets) == len(JOBS) and all(t["health"] == "up" for t in targets):
                    time.sleep(4)
                    break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("Prometheus did not scrape every service: " + (folder / "prometheus.log").read_text()[-2000:])
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def metric_names(expr):
    """The metrics a query reads: names followed by a selector or a range."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr)) - {"by", "without"}


@pytest.mark.parametrize("expr", list(panel_queries()))
def test_every_panel_query_returns_series(prometheus, expr):
    # Every metric it names is one a service exposes (`or vector(0)` would hide a typo).
    known = set(get(f"{prometheus}/api/v1/label/__name__/values")["data"])
    assert metric_names(expr) <= known, f"unknown metrics: {metric_names(expr) - known}"
    answer = get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    assert answer["data"]["result"], f"no series for {expr}"
