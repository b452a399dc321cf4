"""Every ClickHouse migration and every analytics/attribution query, exactly as the
services send them (printed by `linktrace-sql-catalog`), run on current ClickHouse
(chdb, in-process) and on the ClickHouse server of this machine (18.16), against one
fixture: both must succeed and give the same, known answers.

Run by deploy/test.sh: `python3 -m pytest integration/sql`.
"""

import json
import os
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "00000000-0000-4000-8000-00000000000a"
OTHER = "00000000-0000-4000-8000-00000000000b"


def catalog():
    path = os.environ.get("LINKTRACE_SQL_CATALOG")
    if path:
        return json.loads(Path(path).read_text())
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "linktrace-api", "--bin", "linktrace-sql-catalog"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


CATALOG = catalog()

# (event_id, account, environment, link, event name, user, click id, ip, platform, time)
FIXTURE = [
    ("f01", ACCOUNT, "production", "alpha123", "click", "", "click-1", "203.0.113.9", "ios", "2026-11-01 10:30:00"),
    ("f02", ACCOUNT, "production", "alpha123", "click", "", "click-2", "203.0.113.9", "android", "2026-11-02 12:00:00"),
    ("f03", ACCOUNT, "production", "beta1234", "click", "", "click-3", "198.51.100.1", "web", "2026-11-03 23:59:59"),
    ("f04", ACCOUNT, "production", "alpha123", "install", "u1", "", "", "ios", "2026-11-04 05:30:00"),
    ("f05", ACCOUNT, "production", "alpha123", "purchase", "u1", "", "", "", "2026-11-02 13:00:00"),
    ("f06", ACCOUNT, "production", "alpha123", "purchase", "u2", "", "", "", "2026-11-02 14:00:00"),
    # Outside the range [2026-11-01 10:00, 2026-11-04 06:00) the catalog's scope widens to.
    ("f07", ACCOUNT, "production", "alpha123", "purchase", "u1", "", "", "", "2026-11-04 06:00:00"),
    ("f08", ACCOUNT, "production", "alpha123", "click", "", "click-8", "203.0.113.9", "ios", "2026-11-01 09:59:59"),
    # Another environment, another account.
    ("f09", ACCOUNT, "test", "alpha123", "purchase", "u3", "", "", "", "2026-11-02 12:00:00"),
    ("f10", OTHER, "production", "alpha123", "click", "", "click-1", "203.0.113.9", "ios", "2026-11-02 12:00:00"),
]


COLUMNS = (
    "event_id, account_id, environment, link_short_code, event_name, entity_id, user_id, properties, "
    "source, ip, user_agent, referrer, platform, click_id, event_time, event_time_ms, received_at"
)


def values(row):
    eid, acct, env, link, name, user, click, ip, platform, at = row
    return (
        f"'{eid}', '{acct}', '{env}', '{link}', '{name}', '', '{user}', '', 'api', '{ip}', '', '', "
        f"'{platform}', '{click}', toDateTime('{at}'), toUInt64(toUInt32(toDateTime('{at}'))) * 1000, "
        f"toDateTime('{at}')"
    )


def legacy_insert(rows):
    """Rows as a consumer before migration 3 wrote them: no stream position."""
    return f"INSERT INTO events ({COLUMNS}) VALUES " + ", ".join(f"({values(r)})" for r in rows)


def insert(rows):
    return (
        f"INSERT INTO events ({COLUMNS}, kafka_topic, kafka_partition, kafka_offset) VALUES "
        + ", ".join(f"({values(r)}, 'events', 0, {offset})" for offset, r in enumerate(rows))
    )


# The install is upgraded in place: half the fixture (and an unmerged copy of one event,
# as older consumers left them) is written under the old schema and backfilled by
# migration 3; the other half arrives afterwards, through the materialized views.
BEFORE_UPGRADE = FIXTURE[:5] + [FIXTURE[1]]
AFTER_UPGRADE = FIXTURE[5:]


class Chdb:
    name = "chdb (current ClickHouse)"

    def __init__(self):
        from chdb import session

        self.session = session.Session()
        self.database = "lt_sqlcat_" + uuid.uuid4().hex[:10]
        self.session.query(f"CREATE DATABASE {self.database}")
        self.session.query(f"USE {self.database}")

    def version(self):
        return self.run("SELECT version()")[0][0]

    def run(self, sql):
        result = self.session.query(sql, "TabSeparated")
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        return [line.split("\t") for line in text.splitlines() if line]

    def close(self):
        self.session.query(f"DROP DATABASE IF EXISTS {self.database}")
        self.session.close()


class Server:
    name = "ClickHouse server"

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.database = "lt_sqlcat_" + uuid.uuid4().hex[:10]
        self._post(f"CREATE DATABASE {self.database}", database=None)

    def _post(self, sql, database):
        params = {"database": database} if database else {}
        request = urllib.request.Request(
            self.url + "/?" + urllib.parse.urlencode(params), data=sql.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{error.code}: {error.read().decode()}\n{sql}") from None

    def version(self):
        return self.run("SELECT version()")[0][0]

    def run(self, sql):
        text = self._post(sql + " FORMAT TabSeparated" if sql.lstrip().upper().startswith("SELECT") else sql, self.database)
        return [line.split("\t") for line in text.splitlines() if line]

    def close(self):
        self._post(f"DROP DATABASE IF EXISTS {self.database}", database=None)


def engines():
    yield "chdb"
    url = os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:8123")
    try:
        urllib.request.urlopen(url + "/ping", timeout=2)
    except OSError:
        if os.environ.get("CI"):
            raise
        return
    yield "server"


@pytest.fixture(scope="module", params=list(engines()))
def engine(request):
    if request.param == "chdb":
        engine = Chdb()
    else:
        engine = Server(os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:8123"))
    def apply(migrations):
        for migration in migrations:
            for statement in migration["statements"]:
                engine.run(statement)

    apply(m for m in CATALOG["migrations"] if m["version"] <= 2)
    engine.run(legacy_insert(BEFORE_UPGRADE))
    apply(m for m in CATALOG["migrations"] if m["version"] > 2)
    engine.run(insert(AFTER_UPGRADE))
    yield engine
    engine.close()


def query(engine, name):
    return engine.run(CATALOG["queries"][name])


def test_every_migration_applied(engine):
    tables = {row[0] for row in engine.run("SELECT name FROM system.tables WHERE database = currentDatabase()")}
    for table in ["events", "events_kafka_offsets", "event_counts_hourly", "event_counts_daily",
                  "event_totals_hourly", "event_users_daily", "clicks_by_id", "clicks_by_ip"]:
        assert table in tables, (engine.name, engine.version(), table)
    assert "events_hourly" not in tables
    assert engine.run("SELECT count() FROM events") == [["10"]]


def test_totals(engine):
    assert query(engine, "totals") == [
        ["alpha123", "click", "2"], ["alpha123", "install", "1"], ["alpha123", "purchase", "2"],
        ["beta1234", "click", "1"],
    ]
    assert query(engine, "totals_by_link") == [
        ["alpha123", "click", "2"], ["alpha123", "install", "1"], ["alpha123", "purchase", "2"],
    ]


def test_link_totals_are_all_time(engine):
    assert sorted(query(engine, "link_totals")) == [["click", "3"], ["install", "1"], ["purchase", "3"]]


def hour(text):
    return str(int(__import__("datetime").datetime.fromisoformat(text + "+00:00").timestamp()))


def test_timeseries(engine):
    assert query(engine, "timeseries_hour") == [
        [hour("2026-11-01T10:00:00"), "1"], [hour("2026-11-02T12:00:00"), "1"],
        [hour("2026-11-02T13:00:00"), "1"], [hour("2026-11-02T14:00:00"), "1"],
        [hour("2026-11-03T23:00:00"), "1"], [hour("2026-11-04T05:00:00"), "1"],
    ]
    assert query(engine, "timeseries_day") == [
        [hour("2026-11-01T00:00:00"), "1"], [hour("2026-11-02T00:00:00"), "3"],
        [hour("2026-11-03T00:00:00"), "1"], [hour("2026-11-04T00:00:00"), "1"],
    ]
    # One link: the per-link rollups (daily for whole days, hourly at the ends).
    assert query(engine, "timeseries_hour_by_link") == [
        [hour("2026-11-01T10:00:00"), "1"], [hour("2026-11-02T12:00:00"), "1"],
        [hour("2026-11-02T13:00:00"), "1"], [hour("2026-11-02T14:00:00"), "1"],
        [hour("2026-11-04T05:00:00"), "1"],
    ]
    assert query(engine, "timeseries_day_by_link") == [
        [hour("2026-11-01T00:00:00"), "1"], [hour("2026-11-02T00:00:00"), "3"],
        [hour("2026-11-04T00:00:00"), "1"],
    ]


def test_funnel(engine):
    assert query(engine, "funnel_events") == [["click", "3"], ["purchase", "2"], ["install", "1"]]
    assert query(engine, "funnel_events_by_link") == [["click", "2"], ["purchase", "2"], ["install", "1"]]
    # Users count over the whole UTC days the range touches (f07 is on the last one).
    assert sorted(query(engine, "funnel_users")) == [["install", "1"], ["purchase", "2"]]
    assert sorted(query(engine, "funnel_users_by_link")) == [["install", "1"], ["purchase", "2"]]


def test_top_links(engine):
    assert query(engine, "top_links") == [["alpha123", "2"], ["beta1234", "1"]]


def test_attribution_lookups(engine):
    assert query(engine, "click_by_id") == [["alpha123", "click-1"]]
    assert query(engine, "click_by_fingerprint") == [["alpha123", "click-1"]]


def test_offsets_high_water_mark(engine):
    assert engine.run(
        "SELECT kafka_partition, maxMerge(max_offset) FROM events_kafka_offsets "
        "WHERE kafka_topic = 'events' GROUP BY kafka_partition"
    ) == [["0", str(len(AFTER_UPGRADE) - 1)]]
