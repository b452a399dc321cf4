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
V2 = "00000000-0000-4000-8000-00000000000c"


def catalog():
    path = os.environ.get("LINKTRACE_SQL_CATALOG")
    if path:
        return json.loads(Path(path).read_text())
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "linktrace-integration", "--bin", "linktrace-sql-catalog"],
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


# Clicks with their facts (migration 4), for the GET /api/v1/analytics reads, in an account
# of their own. The catalog's range is [2026-11-01 10:20:00, 2026-11-04 05:00:01): both ends
# fall inside a fifteen-minute bucket.
# (event_id, link, event name, time, country, device, os, browser, referrer host,
#  utm_source, bot, revenue currency, revenue micros)
V2_FIXTURE = [
    ("v01", "gamma123", "click", "2026-11-01 10:25:00", "DE", "mobile", "iPhone", "Safari", "google.com", "newsletter", 0, "", 0),
    ("v02", "gamma123", "click", "2026-11-01 10:19:00", "DE", "mobile", "iPhone", "Safari", "", "", 0, "", 0),
    ("v03", "gamma123", "click", "2026-11-02 12:00:00", "JP", "desktop", "Windows 10", "Chrome", "", "twitter", 0, "", 0),
    ("v04", "delta123", "click", "2026-11-02 12:05:00", "JP", "mobile", "Android", "Chrome", "t.co", "twitter", 0, "", 0),
    ("v05", "gamma123", "click", "2026-11-03 08:00:00", "US", "desktop", "Mac OSX", "Firefox", "", "", 0, "", 0),
    ("v06", "gamma123", "click", "2026-11-03 09:00:00", "US", "bot", "", "Googlebot", "", "", 1, "", 0),
    ("v07", "gamma123", "click", "2026-11-04 05:00:00", "DE", "tablet", "iPad", "Safari", "", "", 0, "", 0),
    ("v08", "gamma123", "click", "2026-11-04 05:00:02", "DE", "tablet", "iPad", "Safari", "", "", 0, "", 0),
    ("v09", "gamma123", "purchase", "2026-11-02 13:00:00", "", "", "", "", "", "", 0, "EUR", 12_500_000),
]


# Who each V2 event came from: p1 clicks three times (v02 outside the range), p4 twice (v08
# outside), b1 is the bot, u1 the buyer.
WHO = {"v01": "p1", "v02": "p1", "v03": "p2", "v04": "p3", "v05": "p1", "v06": "b1",
       "v07": "p4", "v08": "p4", "v09": "u1"}


def v2_insert(rows):
    columns = (
        "event_id, account_id, environment, link_short_code, event_name, event_time, event_time_ms, "
        "received_at, country, device, os, browser, referrer_host, utm_source, bot, revenue_currency, "
        "revenue_micros, kafka_topic, kafka_partition, kafka_offset, visitor, user_id"
    )
    def row(offset, r):
        eid, link, name, at, country, device, os_, browser, referrer, utm, bot, currency, micros = r
        # Who: a click's visitor key, any other event's user (uniques).
        who = WHO[eid]
        visitor, user = (who, "") if name == "click" else ("", who)
        return (
            f"('{eid}', '{V2}', 'production', '{link}', '{name}', toDateTime('{at}'), "
            f"toUInt64(toUInt32(toDateTime('{at}'))) * 1000, toDateTime('{at}'), '{country}', '{device}', "
            f"'{os_}', '{browser}', '{referrer}', '{utm}', {bot}, '{currency}', {micros}, 'events-v2', 0, {offset}, "
            f"'{visitor}', '{user}')"
        )
    return f"INSERT INTO events ({columns}) VALUES " + ", ".join(row(o, r) for o, r in enumerate(rows))


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

    def rows_json(self, sql):
        result = self.session.query(sql, "JSONEachRow")
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        return [json.loads(line) for line in text.splitlines() if line]

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

    def rows_json(self, sql):
        text = self._post(sql + " FORMAT JSONEachRow", self.database)
        return [json.loads(line) for line in text.splitlines() if line]

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
    engine.run(v2_insert(V2_FIXTURE))
    yield engine
    engine.close()


def query(engine, name):
    return engine.run(CATALOG["queries"][name])


def test_every_migration_applied(engine):
    tables = {row[0] for row in engine.run("SELECT name FROM system.tables WHERE database = currentDatabase()")}
    for table in ["events", "events_kafka_offsets", "event_counts_hourly", "event_counts_daily",
                  "event_totals_hourly", "event_users_daily", "clicks_by_id", "clicks_by_ip",
                  "event_breakdowns_15m"]:
        assert table in tables, (engine.name, engine.version(), table)
    assert "events_hourly" not in tables
    assert engine.run("SELECT count() FROM events") == [[str(10 + len(V2_FIXTURE))]]


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
    # The click, and when it happened (ms since the epoch: 2026-11-01 10:30:00 UTC), for the
    # attribution's window and evidence.
    clicked_at_ms = "1793529000000"
    assert query(engine, "click_by_id") == [["alpha123", "click-1", clicked_at_ms]]
    assert query(engine, "click_by_fingerprint") == [["alpha123", "click-1", clicked_at_ms]]


def test_running_write(engine):
    # Whether a write left open is still running (no such query here).
    assert query(engine, "running_write") == [["0"]]


def test_stored_offsets(engine):
    # How far ClickHouse holds each partition (the stream ledger's start on an upgrade,
    # and the answer that resolves a write left open).
    assert query(engine, "stored_offsets") == [["0", str(len(AFTER_UPGRADE) - 1)]]


def test_v2_count_reads_partial_buckets_from_events(engine):
    # v01 and v07 sit in partial buckets inside the range; v02 and v08 in the same
    # buckets, outside it; v06 is a bot; v09 is not a click.
    # Uniques: p1, p2, p3, p4 (v01 and v07 from the raw events, merged with the rollup's).
    assert query(engine, "v2_count") == [["", "5", "['']", "['0']", "4"]]
    # The same range widened to whole buckets reads the rollup alone: v02 and v08 count,
    # their visitors (p1, p4) once.
    assert query(engine, "v2_count_aligned") == [["", "7", "['']", "['0']", "4"]]


def test_v2_series_buckets(engine):
    # Keyed by the index of the caller's bucket (UTC days here): count and uniques.
    assert [[row[0], row[1], row[4]] for row in query(engine, "v2_series")] == [
        ["1", "1", "1"], ["2", "2", "2"], ["3", "1", "1"], ["4", "1", "1"],
    ]


def test_v2_breakdowns_and_filters(engine):
    assert [[r[0], r[1], r[4]] for r in query(engine, "v2_countries")] == [
        ["DE", "2", "2"], ["JP", "2", "2"], ["US", "1", "1"],
    ]
    # Bots included, country DE or JP, device not desktop.
    assert [row[:2] for row in query(engine, "v2_devices_filtered")] == [["mobile", "2"], ["tablet", "1"]]
    assert [row[:2] for row in query(engine, "v2_utm_sources_aligned")] == [
        ["", "4"], ["twitter", "2"], ["newsletter", "1"],
    ]


def test_v2_revenue_per_currency(engine):
    # Sums are Decimal128, read as text: exact at any size.
    assert query(engine, "v2_purchase_revenue_by_link") == [["gamma123", "1", "['EUR']", "['12500000']", "1"]]


def test_data_migrations_read_test_traffic(engine):
    # The fixture holds production traffic only: nothing to move, and both queries run.
    assert query(engine, "data_migration_test_entity_events") == []
    assert query(engine, "data_migration_test_installs") == []


def test_older_rollups_count_people_only(engine):
    # v06 is a bot: in the breakdowns, not in the rollups the older endpoints read.
    assert engine.run(
        f"SELECT sum(events) FROM event_counts_daily WHERE account_id = '{V2}' AND event_name = 'click'"
    ) == [["7"]]
    assert engine.run(
        f"SELECT sum(events) FROM event_breakdowns_15m WHERE account_id = '{V2}' AND event_name = 'click'"
    ) == [["8"]]


def test_export_rows_in_time_order_with_iso_times(engine):
    rows = query(engine, "export_all")
    # Bots and conversions too; only the range: v02 (before) and v08 (after) are outside.
    assert [r[0] for r in rows] == ["v01", "v03", "v04", "v09", "v05", "v06", "v07"]
    assert rows[0][3] == "2026-11-01T10:25:00.000Z"
    purchases = query(engine, "export_purchases")
    assert [(r[0], r[1], r[8], r[9]) for r in purchases] == [("v09", "purchase", "EUR", "12.5")]


def test_export_csv_columns_run_and_keep_plain_cells(engine):
    # Same rows as the NDJSON export; no fixture cell starts with a formula character.
    assert query(engine, "export_all_csv") == query(engine, "export_all")



# The rollup reconciler's SQL (`linktrace_consumer::reconcile`) is made from each server's
# own view definitions: the catalog binary is given what this engine says of its tables.
RECONCILED_ACCOUNT = "00000000-0000-4000-8000-00000000000d"
RECONCILED_DAY = "2026-10-15"


def rollup_sql(engine, day):
    database = engine.database
    described = {
        "database": database,
        "day": day,
        "tables": engine.rows_json(
            "SELECT name, engine, partition_key, create_table_query FROM system.tables "
            f"WHERE database = '{database}'"),
        "columns": engine.rows_json(
            f"SELECT table, name, type, is_in_sorting_key FROM system.columns WHERE database = '{database}'"),
    }
    built = REPO / "target" / "debug" / "linktrace-sql-catalog"
    command = [str(built), "rollups"] if built.exists() else [
        "cargo", "run", "-q", "-p", "linktrace-integration", "--bin", "linktrace-sql-catalog", "--", "rollups"]
    out = subprocess.run(command, cwd=REPO, input=json.dumps(described), check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def differing(engine, sql):
    return [row[0] for row in engine.run(f"SELECT toString(row_hash) FROM ({sql['differences']})")]


def test_reconciliation_finds_and_repairs_what_a_rollup_lacks_or_has_too_much(engine):
    sql = rollup_sql(engine, RECONCILED_DAY)
    assert sorted(sql) == [
        "clicks_by_id_mv -> clicks_by_id",
        "clicks_by_ip_mv -> clicks_by_ip",
        "event_breakdowns_15m_mv -> event_breakdowns_15m",
        "event_counts_daily_mv -> event_counts_daily",
        "event_counts_hourly_mv -> event_counts_hourly",
        "event_totals_hourly_mv -> event_totals_hourly",
        "event_users_daily_all_links_mv + event_users_daily_by_link_mv -> event_users_daily",
    ], "every rollup of events with a day to compare by (not the offsets)"
    # The fixture's other days are in agreement too.
    for name, one in rollup_sql(engine, "2026-11-02").items():
        assert differing(engine, one) == [], name
    # Clicks and a purchase that three views never saw, and a count the events never had.
    missed = ["clicks_by_id_mv", "clicks_by_ip_mv", "event_breakdowns_15m_mv"]
    for view in missed:
        engine.run(f"DETACH TABLE {view}")
    rows = [
        ("r01", RECONCILED_ACCOUNT, "production", "alpha123", "click", "", "rc-1", "192.0.2.1", "ios", f"{RECONCILED_DAY} 08:00:00"),
        ("r02", RECONCILED_ACCOUNT, "production", "alpha123", "click", "", "rc-2", "192.0.2.2", "web", f"{RECONCILED_DAY} 09:00:00"),
        ("r03", RECONCILED_ACCOUNT, "production", "alpha123", "purchase", "u9", "", "", "", f"{RECONCILED_DAY} 09:30:00"),
    ]
    engine.run(insert(rows))
    for view in missed:
        engine.run(f"ATTACH TABLE {view}")
    engine.run(
        "INSERT INTO event_counts_daily (account_id, environment, day, event_name, link_short_code, "
        f"revenue_currency, events) VALUES ('{RECONCILED_ACCOUNT}', 'production', '{RECONCILED_DAY}', "
        "'install', 'alpha123', '', 5)")
    found = {name: differing(engine, one) for name, one in sql.items()}
    assert {name: len(hashes) for name, hashes in found.items() if hashes} == {
        "clicks_by_id_mv -> clicks_by_id": 2,
        "clicks_by_ip_mv -> clicks_by_ip": 2,
        # Per (bucket, link, facts): the two clicks' buckets and the purchase's.
        "event_breakdowns_15m_mv -> event_breakdowns_15m": 3,
        "event_counts_daily_mv -> event_counts_daily": 1,
    }
    for name, hashes in found.items():
        if hashes:
            engine.run(sql[name]["repair"].replace("__HASHES__", ", ".join(hashes)))
    for name, one in sql.items():
        assert differing(engine, one) == [], name
    where = f"account_id = '{RECONCILED_ACCOUNT}'"
    assert engine.run(f"SELECT toUInt64(sum(events)) FROM event_counts_daily WHERE {where}") == [["3"]]
    assert engine.run(f"SELECT toUInt64(sum(events)) FROM event_breakdowns_15m WHERE {where}") == [["3"]]
    assert engine.run(
        f"SELECT toUInt64(sum(u)) FROM (SELECT uniqHLL12Merge(uniques) AS u FROM event_breakdowns_15m "
        f"WHERE {where} GROUP BY bucket, event_name)") == [["1"]]
    assert engine.run(f"SELECT count() FROM (SELECT click_id FROM clicks_by_id WHERE {where} GROUP BY click_id)") == [["2"]]
