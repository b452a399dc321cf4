"""Measures the dashboard reads and attribution matches of bench/analytics/run.sh.

Each read: 3 warm-up requests, then --requests sequential requests through the api (wall
time per HTTP request: p50, p99, max), and from ClickHouse's query_log the peak memory and
server time of the queries the api sent meanwhile. Then the pre-rollup queries (as
api/src/analytics.rs ran them before migration 3: uniqExact over the raw table) twice each,
raw, in the same run. Then what `uniques` costs analytics v2: each v2 read's own SQL (as
the api sent it, from query_log) against the same SQL without its sketches, raw, in
interleaved rounds (the order alternating), as the median of the rounds' ratios. Writes JSON
(--results); bench/report's `analytics` turns it into its section of BENCHMARKS.md.
"""

import argparse
import json
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone



def ch(args, sql, settings=None):
    params = {"database": args.database, **(settings or {})}
    request = urllib.request.Request(
        args.clickhouse + "/?" + urllib.parse.urlencode(params), data=sql.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read().decode().strip()


def call(args, method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.api + path, data=data, method=method)
    request.add_header("x-api-key", key)
    if data is not None:
        request.add_header("content-type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload, status = error.read(), error.code
    return status, json.loads(payload or b"null"), (time.perf_counter() - started) * 1000


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def quiet_second():
    """A second boundary after which only the next read's queries start: waits into the
    next whole second (query_log's event_time has one-second resolution)."""
    time.sleep(1.05 - (time.time() % 1))
    return int(time.time())


def query_log(args, since, likes):
    """Peak memory (bytes) and server milliseconds of the finished queries since `since`
    whose text starts like one of `likes` (each read's own SQL)."""
    ch(args, "SYSTEM FLUSH LOGS")
    matching = " OR ".join(f"query LIKE '{like}'" for like in likes)
    row = ch(
        args,
        "SELECT count(), max(memory_usage), quantileExact(0.5)(query_duration_ms), max(query_duration_ms) "
        f"FROM system.query_log WHERE type = 2 AND event_time >= toDateTime({since}) "
        f"AND ({matching}) AND query NOT LIKE '%query_log%'",
    )
    count, memory, p50, top = row.split("\t")
    return {"queries": int(count), "peak_memory_mib": round(int(memory) / 2**20, 1),
            "server_ms_p50": float(p50), "server_ms_max": float(top)}


def last_query(args, since, likes):
    """The text of the last finished query since `since` like one of `likes`: runnable as it
    is (the api binds its values into the text)."""
    ch(args, "SYSTEM FLUSH LOGS")
    matching = " OR ".join(f"query LIKE '{like}'" for like in likes)
    return ch(args, f"SELECT query FROM system.query_log WHERE type = 2 AND event_time >= toDateTime({since}) "
                    f"AND ({matching}) AND query NOT LIKE '%query_log%' ORDER BY event_time DESC LIMIT 1 "
                    "FORMAT TSVRaw")


# The parts of a v2 read that merge the visitor sketches (api/src/analytics/breakdowns.rs).
SKETCH_PARTS = [", uniqHLL12Merge(sketch) AS uniques", ", uniqHLL12MergeState(uniques) AS sketch",
                "revenue_micros, uniques FROM event_breakdowns_15m"]


def uniques_cost(args, name, sql, rounds=15):
    """The read's SQL with and without its sketches, raw, in alternating order each round:
    wall ms per run and the median of the rounds' ratios."""
    without = sql
    for part in SKETCH_PARTS:
        assert part in without, (name, part, sql[:300])
        without = without.replace(part, part.replace(", uniques FROM", " FROM") if "FROM" in part else "")
    # A range that starts or ends inside a bucket also reads those buckets' raw events.
    raw_sketch = ", arrayReduce('uniqHLL12State', arrayFilter(w -> w != '', [if(event_name = 'click', visitor, user_id)])) AS uniques"
    without = without.replace(raw_sketch, "")
    # A series re-keys its per-bucket sums (the sketch passes through one more level).
    for part in [", uniqHLL12MergeState(bucket_sketch) AS sketch", ", sketch AS bucket_sketch"]:
        without = without.replace(part, "")
    assert "sketch" not in without and "uniqHLL12" not in without, (name, without[:400])
    def run(text):
        started = time.perf_counter()
        ch(args, text)
        return (time.perf_counter() - started) * 1000
    run(sql), run(without)
    with_ms, without_ms, ratios = [], [], []
    for round_ in range(rounds):
        if round_ % 2 == 0:
            a, b = run(sql), run(without)
        else:
            b, a = run(without), run(sql)
        with_ms.append(a); without_ms.append(b); ratios.append(a / b)
    cost = {"read": name, "rounds": rounds, "with_ms": round(statistics.median(with_ms), 1),
            "without_ms": round(statistics.median(without_ms), 1), "ratio": round(statistics.median(ratios), 2)}
    print(f"uniques {name:40s} {cost['with_ms']} ms vs {cost['without_ms']} ms: {cost['ratio']}x", flush=True)
    return cost


def main():
    parser = argparse.ArgumentParser()
    for name in ["--api", "--clickhouse", "--database", "--account-file", "--results"]:
        parser.add_argument(name, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--seed-seconds", type=int, default=0)
    parser.add_argument("--requests", type=int, default=100)
    # The v2 reads scan the fifteen-minute rollup of every fact: slower, so fewer requests.
    parser.add_argument("--v2-requests", type=int, default=20)
    args = parser.parse_args()
    account = json.load(open(args.account_file))
    key, account_id = account["apiKey"], account["accountId"]
    call(args, "POST", "/api/v1/referral-links", key,
         {"destinationUrl": "https://example.com", "shortCode": "lnk1042"})

    # An IP and click id from the last day, for the attribution matches.
    recent_ip, recent_click = ch(
        args,
        "SELECT ip, click_id FROM clicks_by_ip WHERE account_id = '%s' AND event_time >= now() - 3600 "
        "ORDER BY event_time DESC LIMIT 1" % account_id,
    ).split("\t")

    totals = ["SELECT link_short_code AS short_code, event_name, sum(events)%"]
    funnel = ["SELECT event_name, sum(events) AS events%", "SELECT event_name, uniqHLL12Merge(users)%"]
    series = ["SELECT bucket_%"]
    v2 = ["SELECT key, sum(events) AS count%"]
    week_ago = (datetime.now(timezone.utc) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reads = [
        ("totals (30 days)", "GET", "/api/v1/analytics/totals", None, totals),
        ("funnel (30 days)", "GET", "/api/v1/analytics/funnel", None, funnel),
        ("funnel, one link (30 days)", "GET", "/api/v1/analytics/funnel?shortCode=lnk1042", None, funnel),
        ("top links (30 days)", "GET", "/api/v1/analytics/top-links", None,
         ["SELECT link_short_code AS short_code, sum(events)%"]),
        ("daily series (30 days)", "GET", "/api/v1/analytics/timeseries?interval=day", None, series),
        ("hourly series (30 days)", "GET", "/api/v1/analytics/timeseries?interval=hour", None, series),
        ("hourly series (7 days)", "GET",
         "/api/v1/analytics/timeseries?interval=hour&from=" + urllib.parse.quote(week_ago), None, series),
        ("daily series, one link (30 days)", "GET", "/api/v1/analytics/timeseries?interval=day&shortCode=lnk1042",
         None, series),
        ("link metadata (all-time totals)", "GET", "/api/v1/referral-links/metadata?shortCode=lnk1042", None,
         ["SELECT event_name, sum(events) AS n FROM event_counts_daily%"]),
        ("v2 clicks, count (30 days)", "GET", "/api/v1/analytics", None, v2),
        ("v2 clicks per day (30 days)", "GET", "/api/v1/analytics?groupBy=timeseries&interval=day", None, v2),
        ("v2 clicks per hour (7 days)", "GET",
         "/api/v1/analytics?groupBy=timeseries&interval=hour&from=" + urllib.parse.quote(week_ago), None, v2),
        ("v2 clicks by country (30 days)", "GET", "/api/v1/analytics?groupBy=countries", None, v2),
        ("v2 clicks by link (30 days)", "GET", "/api/v1/analytics?groupBy=links", None, v2),
        ("v2 purchases by link (30 days)", "GET", "/api/v1/analytics?groupBy=links&event=purchase", None, v2),
        ("attribution by click id", "POST", "/api/v1/attributions",
         lambda: {"userId": "bench-" + uuid.uuid4().hex, "clickId": recent_click}, ["%FROM clicks_by_id%"]),
        ("attribution by fingerprint (ip + platform)", "POST", "/api/v1/attributions",
         lambda: {"userId": "bench-" + uuid.uuid4().hex, "ip": recent_ip}, ["%FROM clicks_by_ip%"]),
    ]
    results, sent = [], {}
    for name, method, path, body, likes in reads:
        for _ in range(3):
            call(args, method, path, key, body() if body else None)
        since = quiet_second()
        times, statuses = [], set()
        for _ in range(args.v2_requests if likes is v2 else args.requests):
            status, answer, ms = call(args, method, path, key, body() if body else None)
            statuses.add(status)
            times.append(ms)
        if method == "POST":
            assert answer["attribution"]["matchType"] in ("click_id", "fingerprint"), answer
        assert statuses <= {200, 201}, (name, statuses, answer)
        log = query_log(args, since, likes)
        if likes is v2:
            sent[name] = last_query(args, since, likes)
        results.append({"read": name, "path": path, "requests": len(times),
                        "p50_ms": round(statistics.median(times), 1), "p99_ms": round(percentile(times, 99), 1),
                        "max_ms": round(max(times), 1), **log})
        print(f"{name:45s} p50 {results[-1]['p50_ms']:7.1f} ms  p99 {results[-1]['p99_ms']:7.1f} ms  "
              f"peak {log['peak_memory_mib']:7.1f} MiB", flush=True)

    # The same reads before migration 3 (api/src/analytics.rs at aaecfde), raw SQL.
    now = int(time.time())
    scope = f"account_id = '{account_id}' AND environment = 'production' " \
            f"AND event_time >= toDateTime({now - 30 * 86400}) AND event_time < toDateTime({now + 3600})"
    old = [
        ("totals (30 days)", f"SELECT link_short_code, event_name, uniqExact(event_id) FROM events WHERE {scope} "
                             "GROUP BY link_short_code, event_name"),
        ("funnel (30 days)", f"SELECT event_name, uniqExact(event_id), uniqExactIf(user_id, user_id != '') FROM events "
                             f"WHERE {scope} GROUP BY event_name"),
        ("top links (30 days)", f"SELECT link_short_code, uniqExact(event_id) AS c FROM events WHERE {scope} "
                                "AND event_name = 'click' GROUP BY link_short_code ORDER BY c DESC LIMIT 10"),
        ("daily series (30 days)", f"SELECT toStartOfDay(event_time) AS d, uniqExact(event_id) FROM events "
                                   f"WHERE {scope} GROUP BY d"),
        ("attribution by fingerprint (ip + platform)",
         f"SELECT link_short_code, click_id FROM events WHERE account_id = '{account_id}' AND event_name = 'click' "
         f"AND ip = '{recent_ip}' AND event_time >= toDateTime({now - 86400}) ORDER BY event_time_ms DESC LIMIT 1"),
    ]
    before = []
    for name, sql in old:
        since = quiet_second()
        times, error = [], None
        for _ in range(2):
            started = time.perf_counter()
            try:
                ch(args, sql, {"log_queries": 1, "max_memory_usage": 8_000_000_000})
            except urllib.error.HTTPError as failure:
                error = failure.read().decode()[:160]
                break
            times.append((time.perf_counter() - started) * 1000)
        log = query_log(args, since, [sql[:40].replace("'", "''") + "%"])
        before.append({"read": name, "runs": len(times), "median_ms": round(statistics.median(times), 1) if times else None,
                       "error": error, **log})
        print(f"old {name:41s} {before[-1]['median_ms']} ms  peak {log['peak_memory_mib']} MiB {error or ''}", flush=True)

    uniques = [uniques_cost(args, name, sql) for name, sql in sent.items()]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows_of = {t: int(ch(args, f"SELECT count() FROM {t}")) for t in
               ["events", "event_counts_hourly", "event_counts_daily", "event_users_daily", "event_breakdowns_15m",
                "clicks_by_ip"]}
    report = {"commit": commit, "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "events": args.events, "seed_seconds": args.seed_seconds, "rows": rows_of,
              "clickhouse": ch(args, "SELECT version()"), "reads": results, "before_rollups": before,
              "uniques_cost": uniques}
    json.dump(report, open(args.results, "w"), indent=2)


if __name__ == "__main__":
    main()
