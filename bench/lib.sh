# What the benchmark scripts share (sourced after deploy/lib.sh).

# metric URL NAME: the sum of a counter's samples on URL/metrics.
metric() {
  curl -s "$1/metrics" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%d", s }'
}

# proc_ticks PID: the process's CPU so far (utime + stime, in clock ticks).
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench_account NAME PLAN CODE: an account on PLAN through the api at $API_ADDR, with one
# link CODE; exports LT_KEY (live) and LT_TEST_KEY. PLAN `bench` is created first in
# $DATABASE_URL: the Scale plan's endpoints with room for every event a run sends.
bench_account() {
  local name="$1" plan="$2" code="$3" account
  if [[ "$plan" == bench ]]; then
    psql "$DATABASE_URL" -qc "INSERT INTO plans SELECT 'bench', allowed_endpoints, 1000000000000 \
      FROM plans WHERE name = 'scale' ON CONFLICT DO NOTHING" >/dev/null
  fi
  account="$(curl -sf -X POST "http://$API_ADDR/admin/v1/accounts" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
    -H 'content-type: application/json' -d "{\"name\":\"$name\",\"plan\":\"$plan\"}")"
  LT_KEY="$(echo "$account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')"
  LT_TEST_KEY="$(echo "$account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["testApiKey"])')"
  export LT_KEY LT_TEST_KEY
  curl -sf -X POST "http://$API_ADDR/api/v1/referral-links" -H "x-api-key: $LT_KEY" -H 'content-type: application/json' \
    -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"$code\"}" >/dev/null
}

# code_under_test: the commit the services are built from, and "+ uncommitted changes" when
# the working tree differs from it in anything but the benchmarks' own outputs (BENCHMARKS.md
# and the reports under bench/, which an earlier benchmark of the same code may have written).
code_under_test() {
  local code; code="$(git -C "$REPO" rev-parse --short HEAD)"
  if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- . ':!BENCHMARKS.md' ':!bench/*.txt' ':!bench/results.json')" ]]; then
    code+=" + uncommitted changes"
  fi
  echo "$code"
}
