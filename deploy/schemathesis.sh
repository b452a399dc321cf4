#!/usr/bin/env bash
# Property-based contract test of the running stack against docs/openapi.json with
# schemathesis (PyPI): no 5xx, documented status codes, content types and response bodies.
# Used by deploy/test.sh; needs the whole stack up (deploy/up.sh). The hooks in
# schemathesis_hooks.py point generated short codes and account ids at real ones, so
# requests reach each endpoint's core instead of stopping at 404.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" >/dev/null 2>&1
base="http://$GATEWAY_ADDR"
# Says what is wrong when the stack does not take our admin token (one started with another
# LINKTRACE_ADMIN_TOKEN, say) instead of failing further on.
create_account() {
  local answer status
  answer="$(curl -s -w '\n%{http_code}' -X POST "$base/admin/v1/accounts" \
    -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
    -H 'content-type: application/json' -d "{\"name\":\"$1\",\"plan\":\"scale\"}")" || true
  status="${answer##*$'\n'}"
  if [[ "$status" != 200 && "$status" != 201 ]]; then
    log "schemathesis: the stack at $base did not create an account (HTTP ${status:-none})."
    log "  It is not up, or it was started with another LINKTRACE_ADMIN_TOKEN: stop it (deploy/down.sh) or export its token, then run again."
    return 1
  fi
  printf '%s' "${answer%$'\n'*}"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
account="$(create_account schemathesis)"
key="$(field apiKey <<<"$account")"
spare_account="$(create_account schemathesis-spare)"
spare="$(field accountId <<<"$spare_account")"
link="st$(date +%s)"
curl -sf -X POST "$base/api/v1/referral-links" -H "x-api-key: $key" -H 'content-type: application/json' \
  -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"$link\"}" >/dev/null
# A webhook whose id the hooks put in half the generated paths (its URL's port is closed:
# its deliveries fail and are retried, as a dead endpoint's would).
webhook="$(curl -sf -X POST "$base/api/v1/webhooks" -H "x-api-key: $key" -H 'content-type: application/json' \
  -d '{"url":"http://127.0.0.1:9/hook","events":["*"]}' | field id)"
log "schemathesis against $base (docs/openapi.json; link $link, webhook $webhook)"
cd "$REPO/deploy"
SCHEMATHESIS_HOOKS=schemathesis_hooks SCHEMATHESIS_LINK="$link" SCHEMATHESIS_SPARE_ACCOUNT="$spare" SCHEMATHESIS_WEBHOOK="$webhook" \
  schemathesis run "$REPO/docs/openapi.json" -u "$base" -n "${SCHEMATHESIS_EXAMPLES:-40}" \
  -H "x-api-key: $key" -H "linkrunner-key: $key" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
