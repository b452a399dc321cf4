#!/usr/bin/env bash
# Property-based contract test of the running stack against docs/openapi.json with
# schemathesis (PyPI): no 5xx, documented status codes, content types and bodies.
# Used by deploy/test.sh; needs the whole stack up (deploy/up.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v schemathesis >/dev/null 2>&1 || python3 -m pip install -q schemathesis >/dev/null 2>&1
base="http://$GATEWAY_ADDR"
account="$(curl -sf -X POST "$base/admin/v1/accounts" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"schemathesis","plan":"scale"}')"
key="$(echo "$account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')"
curl -sf -X POST "$base/api/v1/referral-links" -H "x-api-key: $key" -H 'content-type: application/json' \
  -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"st$(date +%s)\"}" >/dev/null
log "schemathesis against $base (docs/openapi.json)"
schemathesis run "$REPO/docs/openapi.json" -u "$base" -n "${SCHEMATHESIS_EXAMPLES:-40}" \
  -H "x-api-key: $key" -H "linkrunner-key: $key" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
