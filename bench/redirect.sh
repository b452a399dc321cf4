#!/usr/bin/env bash
# The link redirect with click enrichment on (user agent, bots, country from the database
# deploy installs, visitor key, UTM, referrer): clicks/s, p50/p99 and the api's CPU per
# click, for a real-world mix of clicks (bench/wrk/clicks.lua) against bare GETs with no
# headers (a bot without a user agent: no user-agent parsing), interleaved over
# BENCH_ROUNDS (3) rounds of BENCH_SECONDS (10); the redirect with the broker unreachable;
# then every recorded click drained and counted in ClickHouse; and where an enriched
# click's time goes: step by step (click-enrichment) and in the running api (perf). The mix
# also runs, interleaved, against a second api with the repeated-click check off
# (CLICK_REPEAT_WINDOW_SECS=0): what deciding repeats costs; and against a link with 20
# redirect rules none of its clicks match and a click cap: what routing costs. Writes the "redirect" section of
# BENCHMARKS.md. Release build; ports 958x; its own databases and topics.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate redirect 958
# wrk plays the gateway from 127.0.0.1 (its X-Forwarded-For names the clicks' countries).
export TRUSTED_PROXIES=127.0.0.1,::1
source "$REPO/deploy/lib.sh"
SECONDS_EACH="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
ROUNDS="${BENCH_ROUNDS:-3}"
RESULTS="$STATE/results.$RUN_ID"
mkdir -p "$STATE"; : >"$RESULTS"

cleanup() { bench_cleanup api api_down api_norepeat consumer; }
trap cleanup EXIT

apt_install wrk linux-perf
start_infrastructure   # also installs the IP -> country database and exports GEOIP_DATABASE
(cd "$REPO" && cargo build --release -q -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)
start_service consumer   # applies the schema; stopped again so the api has the cores
stop_pid consumer
start_service api
(export KAFKA_BROKERS=127.0.0.1:9 KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS=2000
 start_service_as api_down api 127.0.0.1:9584)
(export CLICK_REPEAT_WINDOW_SECS=0
 start_service_as api_norepeat api 127.0.0.1:9585)
export LT_CODE=click123
bench_account redirect free "$LT_CODE"
# A second link with routing: 20 redirect rules none of the mix matches (every click tries
# them all: the worst case) and a click cap it never reaches (each counted click is counted
# towards it in Postgres, in the background).
rules="$(python3 -c 'import json; print(json.dumps([{"country": "AQ", "language": "x" + chr(97 + i % 26) + chr(97 + i // 26), "url": "https://example.com/r%d" % i} for i in range(20)]))')"
curl -sf -X POST "http://$API_ADDR/api/v1/referral-links" -H "x-api-key: $LT_KEY" -H 'content-type: application/json' \
  -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"rules123\",\"maxClicks\":1000000000000,\"rules\":$rules}" >/dev/null
echo "settings {\"geoip\":\"$(basename "$GEOIP_DATABASE")\",\"trusted_proxies\":\"$TRUSTED_PROXIES\",\"connections\":$CONNECTIONS,\"seconds\":$SECONDS_EACH,\"rounds\":$ROUNDS}" >>"$RESULTS"

# wrk_cpu NAME PIDNAME SCRIPT URL: wrk's JSON summary and PIDNAME's CPU µs per request
# (in round 1, also a perf profile of PIDNAME, grouped by bench/report/perf_groups.py).
wrk_cpu() {
  local name="$1" pid before after line tmp
  pid="$(cat "$RUN/$2.pid")"
  if [[ "$name" == *_r1 ]]; then
    (sleep 1; perf record -F 499 -g -p "$pid" -o "$STATE/perf-$name.data" -- sleep "$((SECONDS_EACH - 2))" >/dev/null 2>&1
     echo "profile_${name%_r1} $(bench_report perf-groups "$STATE/perf-$name.data")" >>"$RESULTS") &
  fi
  tmp="$(mktemp --suffix=.lua)"
  cat "$REPO/bench/wrk/$3" "$REPO/bench/wrk/report.lua" >"$tmp"
  log "measuring $name ($CONNECTIONS connections, ${SECONDS_EACH}s)"
  before="$(proc_ticks "$pid")"
  line="$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --timeout 10s -s "$tmp" "$4" | grep '^WRK_JSON' | sed 's/^WRK_JSON //')"
  after="$(proc_ticks "$pid")"
  rm -f "$tmp"
  python3 -c "import json,sys,os; r=json.loads(sys.argv[2]); t=os.sysconf('SC_CLK_TCK'); r['cpu_us']=round((int(sys.argv[4])-int(sys.argv[3]))/t*1e6/max(r['requests'],1),1); print(sys.argv[1], json.dumps(r))" \
    "$name" "$line" "$before" "$after" >>"$RESULTS"
  wait
}
for round in $(seq 1 "$ROUNDS"); do
  wrk_cpu "mix_r$round" api clicks.lua "http://$API_ADDR/l/$LT_CODE"
  wrk_cpu "rules_r$round" api clicks.lua "http://$API_ADDR/l/rules123"
  wrk_cpu "norepeat_r$round" api_norepeat clicks.lua "http://127.0.0.1:9585/l/$LT_CODE"
  wrk_cpu "bare_r$round" api get.lua "http://$API_ADDR/l/$LT_CODE"
done
wrk_cpu broker_down api_down clicks.lua "http://127.0.0.1:9584/l/$LT_CODE"
sleep 3   # the last unreachable clicks time out (KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS)
echo "down_counters {\"lost\":$(curl -s "http://127.0.0.1:9584/metrics" | awk '/^redirect_clicks_total\{/ && /recorded="false"/ { s += $2 } END { printf "%d", s }')}" >>"$RESULTS"
stop_pid api_down
# The repeat-off api's clicks are drained and counted with the rest.
norepeat_recorded="$(curl -s "http://127.0.0.1:9585/metrics" | awk '/^redirect_clicks_total\{/ && /recorded="true"/ { s += $2 } END { printf "%d", s }')"
stop_pid api_norepeat

# Every click the broker took is stored once; the facts are there.
recorded="$(curl -s "http://$API_ADDR/metrics" | awk '/^redirect_clicks_total\{/ && /recorded="true"/ { s += $2 } END { printf "%d", s }')"
recorded=$((recorded + norepeat_recorded))
lost="$(curl -s "http://$API_ADDR/metrics" | awk '/^redirect_clicks_total\{/ && /recorded="false"/ { s += $2 } END { printf "%d", s }')"
start_service consumer
log "draining $recorded clicks"
deadline=$((SECONDS + 300))
while (( $(metric "http://$CONSUMER_ADDR" consumer_events_consumed_total) < recorded && SECONDS < deadline )); do sleep 0.5; done
sleep 2
ch() { curl -s "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE" --data-binary "$1 FORMAT JSONCompact" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"]))'; }
echo "stored {\"recorded\":$recorded,\"lost\":$lost,\"rows\":$(ch "SELECT count() FROM events" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0])'),\"bots\":$(ch "SELECT countIf(bot = 1) FROM events" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0])'),\"repeats\":$(ch "SELECT countIf(is_repeat = 1) FROM events" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0])'),\"countries\":$(ch "SELECT country, count() AS n FROM events GROUP BY country ORDER BY n DESC, country LIMIT 8"),\"devices\":$(ch "SELECT device, count() AS n FROM events GROUP BY device ORDER BY n DESC, device")}" >>"$RESULTS"
stop_pid consumer

log "timing each enrichment step"
echo "steps $("$REPO/target/release/click-enrichment" "$GEOIP_DATABASE" 7)" >>"$RESULTS"
bench_report redirect "$RESULTS" "$REPO/BENCHMARKS.md" "$(git -C "$REPO" rev-parse --short HEAD)"
log "wrote the redirect section of BENCHMARKS.md"
