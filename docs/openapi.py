#!/usr/bin/env python3
"""Writes docs/openapi.json, the machine-readable description of LinkTrace's public API
(served by ingest and api at /openapi.json). Edit this file, rerun it, commit both.
integration/tests/openapi.rs keeps the document true against the running services."""
import json
import os

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
ERRORS = {
    "400": "Missing or invalid fields, malformed JSON or wrong content type (VALIDATION_ERROR)",
    "401": "Missing or invalid key (UNAUTHORIZED)",
    "403": "The endpoint needs the Scale plan (PLAN_UPGRADE_REQUIRED)",
    "404": "Not found (LINK_NOT_FOUND for links, also for another account's link)",
    "409": "The custom short code is taken (SHORT_CODE_TAKEN)",
    "405": "Method not allowed",
    "413": "Request body too large (PAYLOAD_TOO_LARGE)",
    "429": "Monthly event quota exhausted (QUOTA_EXCEEDED, with resetsOn), or too many requests for this key (RATE_LIMITED, with a Retry-After header)",
    "503": "A dependency (broker, database) cannot take the request (UNAVAILABLE)",
}


def op(summary, ok, errors, security="apiKey", body=None, params=None, tag="api", links=None):
    """`ok` maps each success status to (description, response schema)."""
    responses = {code: {"description": text, "content": {"application/json": {"schema": schema}}} for code, (text, schema) in ok.items()}
    for code, link in (links or {}).items():
        responses[code]["links"] = link
    for code in errors + ["405"]:
        responses[code] = {"description": ERRORS[code], "content": {"application/json": {"schema": ENVELOPE}}}
    operation = {"summary": summary, "tags": [tag], "responses": responses}
    if security:
        operation["security"] = [{security: []}]
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        operation["parameters"] = params
    return operation


def query(name, required=False, description="", schema=None):
    return {"name": name, "in": "query", "required": required, "schema": schema or {"type": "string"}, "description": description}


def path_param(name, schema=None):
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def obj(properties, required=None, nullable=False):
    """An object whose listed properties are all present (required) unless `required` says otherwise."""
    schema = {"type": "object", "required": sorted(properties) if required is None else required, "properties": properties}
    if nullable:
        schema["nullable"] = True
    return schema


def nullable(schema):
    return dict(schema, nullable=True)


STRING = {"type": "string"}
INTEGER = {"type": "integer", "minimum": 0}
TRUE = {"type": "boolean", "enum": [True]}
DATE_TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}
SHORT_CODE = {"type": "string", "pattern": "^[A-Za-z0-9]{4,32}$"}
# Lowercased before the rule applies, so either case is accepted.
EVENT_NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$", "maxLength": 128}
# An identifier the customer chooses: any text but NUL (which no field accepts).
IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\u0000]*$"}
WEB_URL = {"type": "string", "pattern": "^https?://[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]{2,5})?(/[A-Za-z0-9_.~/-]*)?$", "maxLength": 2048}


EVENT = {
    "type": "object",
    "required": ["linkShortCode", "eventName"],
    "properties": {
        "linkShortCode": SHORT_CODE,
        "eventName": dict(EVENT_NAME, description="lowercased, then ^[a-z][a-z0-9_]*$; not click/install/impression/open"),
        "entityId": dict(IDENTIFIER, minLength=0, description="enables deduplication; empty means none"),
    },
}
LINK_BODY = {
    "type": "object",
    "properties": {
        "destinationUrl": WEB_URL,
        "iosUrl": nullable(WEB_URL),
        "androidUrl": nullable(WEB_URL),
        "shortCode": SHORT_CODE,
        "campaign": {"type": "string", "maxLength": 255, "nullable": True},
        "referrerUserId": {"type": "string", "maxLength": 255, "nullable": True},
        "metadata": {"type": "object", "nullable": True, "properties": {
            "title": {"type": "string", "maxLength": 255, "nullable": True},
            "description": {"type": "string", "maxLength": 2000, "nullable": True},
            "imageUrl": nullable(WEB_URL)}},
        "expiresAt": nullable(DATE_TIME),
    },
}
LINK_CREATE_BODY = dict(LINK_BODY, required=["destinationUrl"])

# What the services answer.
LINK = obj({
    "shortCode": SHORT_CODE, "url": STRING, "destinationUrl": STRING, "iosUrl": nullable(STRING), "androidUrl": nullable(STRING),
    "campaign": nullable(STRING), "referrerUserId": nullable(STRING), "expiresAt": nullable(DATE_TIME),
    "metadata": obj({"title": nullable(STRING), "description": nullable(STRING), "imageUrl": nullable(STRING)}),
    "createdAt": DATE_TIME, "updatedAt": DATE_TIME,
})
# The range counted: the asked one widened to whole hours (from rounded down, to up).
RANGE_VIEW = obj({"from": DATE_TIME, "to": DATE_TIME})
ENVIRONMENT = {"type": "string", "enum": ["live", "test"]}
QUEUED = obj({"success": TRUE, "queued": TRUE})
DEDUPLICATED = obj({"success": TRUE, "deduplicated": TRUE})
BATCH_RESULTS = obj({"success": TRUE, "queued": INTEGER, "results": {"type": "array", "items": obj(
    {"index": INTEGER, "status": {"type": "integer", "enum": [200, 202, 400, 404, 429, 503]}, "success": {"type": "boolean"},
     "queued": TRUE, "deduplicated": TRUE, "error": {"$ref": "#/components/schemas/ErrorEnvelope"}},
    required=["index", "status"])}})
CAPTURED = obj({"msg": {"type": "string", "enum": ["Event capture request received!"]}, "status": {"type": "integer", "enum": [200]},
                "data": {"type": "object", "nullable": True, "maxProperties": 0}})
LINK_VIEW = obj({"success": TRUE, "link": LINK})
LINK_PAGE = obj({"success": TRUE, "links": {"type": "array", "items": LINK}, "nextCursor": nullable(STRING)})
LINK_METADATA = obj({"success": TRUE, "link": LINK, "totals": obj({
    "clicks": INTEGER, "installs": INTEGER, "events": INTEGER, "byEvent": {"type": "object", "additionalProperties": INTEGER}})})
ATTRIBUTION = obj({"success": TRUE, "created": {"type": "boolean"}, "link": nullable(LINK), "attribution": obj({
    "userId": STRING, "shortCode": nullable(SHORT_CODE), "clickId": nullable(STRING), "createdAt": DATE_TIME,
    "matchType": {"type": "string", "enum": ["short_code", "click_id", "fingerprint", "organic"]}})})
TOTALS = obj({"success": TRUE, "range": RANGE_VIEW, "totals": {"type": "array", "items": obj(
    {"shortCode": STRING, "eventName": STRING, "count": INTEGER})}})
TIMESERIES = obj({"success": TRUE, "range": RANGE_VIEW, "interval": {"type": "string", "enum": ["hour", "day"]},
                  "points": {"type": "array", "items": obj({"time": DATE_TIME, "count": INTEGER})}})
FUNNEL = obj({"success": TRUE, "range": RANGE_VIEW, "funnel": obj({
    "clicks": INTEGER, "installs": INTEGER, "installRate": {"type": "number", "minimum": 0},
    "steps": {"type": "array", "items": obj({"eventName": STRING, "events": INTEGER, "users": INTEGER,
                                             "perInstall": {"type": "number", "minimum": 0}})},
    "usersApproximate": {"type": "boolean", "description": "users are a uniqHLL12 sketch (~1.6% error) over the UTC days the range touches; every other number is exact"}})})
TOP_LINKS = obj({"success": TRUE, "range": RANGE_VIEW, "links": {"type": "array", "items": obj({"shortCode": STRING, "count": INTEGER})}})
ACCOUNT = obj({"accountId": UUID, "apiKey": {"type": "string", "pattern": "^lt_live_"}, "testApiKey": {"type": "string", "pattern": "^lt_test_"}})
PLAN_CHANGED = obj({"success": TRUE, "accountId": UUID, "plan": STRING})
KEY_ROTATED = obj({"success": TRUE, "accountId": UUID, "environment": ENVIRONMENT, "apiKey": {"type": "string", "pattern": "^lt_(live|test)_"}})
KEY_REVOKED = obj({"success": TRUE, "accountId": UUID, "environment": ENVIRONMENT, "revoked": TRUE})
DELETED = obj({"success": TRUE})

# Stateful testing: what a created link or account lets a client call next.
LINK_LINKS = {"201": {
    "GetMetadata": {"operationId": "getLinkMetadata", "parameters": {"shortCode": "$response.body#/link/shortCode"}},
    "UpdateLink": {"operationId": "updateLink", "parameters": {"shortCode": "$response.body#/link/shortCode"}},
    "DeleteLink": {"operationId": "deleteLink", "parameters": {"shortCode": "$response.body#/link/shortCode"}},
    "FollowLink": {"operationId": "followLink", "parameters": {"shortCode": "$response.body#/link/shortCode"}},
}}
ACCOUNT_LINKS = {"201": {
    "ChangePlan": {"operationId": "changePlan", "parameters": {"accountId": "$response.body#/accountId"}},
    "RevokeKey": {"operationId": "revokeKey", "parameters": {"accountId": "$response.body#/accountId"}},
    "RotateKey": {"operationId": "rotateKey", "parameters": {"accountId": "$response.body#/accountId"}},
}}
RANGE = [query("from", description="ISO-8601, default to minus 30 days; at most 400 days before to", schema=DATE_TIME),
         query("to", description="ISO-8601, default now plus 1 hour", schema=DATE_TIME),
         query("shortCode", schema=SHORT_CODE), query("eventName", schema=EVENT_NAME)]

ROTATE_BODY = {"type": "object", "required": ["environment"], "properties": {"environment": ENVIRONMENT}}

paths = {
    "/api/v1/events": {"post": op("Ingest one post-install event (Scale plan)",
        {"202": ("Queued: the broker has the event", QUEUED),
         "200": ("Deduplicated: this (link, event, entity) was already recorded", DEDUPLICATED)},
        ["400", "401", "403", "404", "413", "429", "503"], body=EVENT, tag="ingest")},
    "/api/v1/events/batch": {"post": op("Ingest up to 1,000 events (1 MiB); one result per event, in order",
        {"200": ("Per-event results", BATCH_RESULTS)}, ["400", "401", "403", "413", "429", "503"],
        body={"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": EVENT}}}, tag="ingest")},
    "/api/v1/capture-event": {"post": op("Linkrunner-compatible event capture (header linkrunner-key)",
        {"201": ("{\"msg\": \"Event capture request received!\", \"status\": 200, \"data\": null}", CAPTURED)},
        ["400", "401", "413", "429", "503"], security="linkrunnerKey",
        body={"type": "object", "required": ["event_name", "user_id"], "properties": {
            "event_name": EVENT_NAME, "user_id": IDENTIFIER, "event_data": {"type": "object"}}}, tag="ingest")},
    "/api/v1/referral-links": {
        "post": op("Create a referral link", {"201": ("The link", LINK_VIEW)}, ["400", "401", "403", "409", "413", "503"],
                   body=LINK_CREATE_BODY, links=LINK_LINKS),
        "get": op("List the account's links, newest first", {"200": ("A page of links and nextCursor", LINK_PAGE)}, ["400", "401", "403", "503"],
                  params=[query("limit", description="1-200, default 50", schema={"type": "integer", "minimum": 1, "maximum": 200}),
                          query("cursor", description="nextCursor of the previous page")]),
    },
    "/api/v1/referral-links/metadata": {"get": dict(op("A link as created, with its click, install and event totals",
        {"200": ("The link and totals", LINK_METADATA)}, ["400", "401", "403", "404", "503"], params=[query("shortCode", True, schema=SHORT_CODE)]),
        operationId="getLinkMetadata")},
    "/api/v1/referral-links/{shortCode}": {
        "patch": dict(op("Change a link's fields", {"200": ("The link", LINK_VIEW)}, ["400", "401", "403", "404", "413", "503"],
                         body=LINK_BODY, params=[path_param("shortCode", SHORT_CODE)]), operationId="updateLink"),
        "delete": dict(op("Delete a link", {"200": ("Deleted", DELETED)}, ["401", "403", "404", "503"],
                          params=[path_param("shortCode", SHORT_CODE)]), operationId="deleteLink"),
    },
    "/api/v1/attributions": {"post": op("Attribute a user's install: shortCode, clickId, fingerprint, else organic; first wins",
        {"201": ("Attributed now", ATTRIBUTION), "200": ("Attributed before: the original result", ATTRIBUTION)},
        ["400", "401", "403", "404", "413", "503"],
        body={"type": "object", "required": ["userId"], "properties": {
            "userId": IDENTIFIER, "shortCode": SHORT_CODE,
            "clickId": {"type": "string", "maxLength": 64}, "ip": {"type": "string", "maxLength": 64},
            "userAgent": {"type": "string", "maxLength": 1024}, "platform": {"type": "string", "maxLength": 32}}})},
    "/api/v1/analytics/totals": {"get": op("Exact totals per link and event name", {"200": ("Totals", TOTALS)}, ["400", "401", "403", "503"], params=RANGE)},
    "/api/v1/analytics/timeseries": {"get": op("Counts per hour (ranges up to 31 days) or day", {"200": ("Points", TIMESERIES)}, ["400", "401", "403", "503"],
        params=RANGE + [query("interval", description="hour or day (default)", schema={"type": "string", "enum": ["hour", "day"]})])},
    "/api/v1/analytics/funnel": {"get": op("Click, install, then each post-install event", {"200": ("The funnel", FUNNEL)}, ["400", "401", "403", "503"], params=RANGE)},
    "/api/v1/analytics/top-links": {"get": op("Links with the most events of a name (clicks by default)", {"200": ("Links", TOP_LINKS)}, ["400", "401", "403", "503"],
        params=RANGE + [query("limit", description="1-100, default 10", schema={"type": "integer", "minimum": 1, "maximum": 100})])},
    "/l/{shortCode}": {"get": {"summary": "Follow a link: 302 to the device's URL, recording a click", "tags": ["redirect"], "operationId": "followLink",
        "parameters": [path_param("shortCode", SHORT_CODE)],
        "responses": {"302": {"description": "Redirect; header x-linktrace-click-id"}, "404": {"description": "Unknown or expired link (HTML page)"},
                      "503": {"description": "Link store unavailable (HTML page)"}}}},
    "/admin/v1/accounts": {"post": op("Create an account with its live and test keys (shown once)", {"201": ("accountId, apiKey, testApiKey", ACCOUNT)},
        ["400", "401", "413", "503"], security="adminToken", links=ACCOUNT_LINKS,
        body={"type": "object", "required": ["name", "plan"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "plan": {"type": "string", "enum": ["free", "scale"], "description": "a plan in the plans table"}}}, tag="admin")},
    "/admin/v1/accounts/{accountId}/plan": {"put": dict(op("Change an account's plan", {"200": ("Changed", PLAN_CHANGED)}, ["400", "401", "404", "413", "503"],
        security="adminToken", body={"type": "object", "required": ["plan"], "properties": {"plan": {"type": "string", "enum": ["free", "scale"]}}},
        params=[path_param("accountId", UUID)], tag="admin"), operationId="changePlan")},
    "/admin/v1/accounts/{accountId}/keys/revoke": {"post": dict(op("Revoke the key of an environment without issuing another", {"200": ("Revoked", KEY_REVOKED)},
        ["400", "401", "404", "413", "503"], security="adminToken", body=ROTATE_BODY,
        params=[path_param("accountId", UUID)], tag="admin"), operationId="revokeKey")},
    "/admin/v1/accounts/{accountId}/keys/rotate": {"post": dict(op("Revoke the current key of an environment and issue a new one", {"200": ("The new key", KEY_ROTATED)},
        ["400", "401", "404", "413", "503"], security="adminToken", body=ROTATE_BODY,
        params=[path_param("accountId", UUID)], tag="admin"), operationId="rotateKey")},
}
document = {
    "openapi": "3.0.3",
    "info": {"title": "LinkTrace", "version": "1", "description": "Referral links, install attribution and post-install events. One base URL for every endpoint."},
    "paths": paths,
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "linkrunnerKey": {"type": "apiKey", "in": "header", "name": "linkrunner-key"},
            "adminToken": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {"ErrorEnvelope": {"type": "object", "required": ["success", "message"], "properties": {
            "success": {"type": "boolean", "enum": [False]}, "message": {"type": "string"},
            "code": {"type": "string"}, "resetsOn": {"type": "string", "format": "date-time"}}}},
    },
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")
with open(out, "w") as f:
    json.dump(document, f, indent=1, sort_keys=True)
    f.write("\n")
