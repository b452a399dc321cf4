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


def op(summary, ok, errors, security="apiKey", body=None, params=None, tag="api"):
    responses = {code: {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}} for code, text in ok.items()}
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


def query(name, required=False, description=""):
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}, "description": description}


def path_param(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


EVENT = {
    "type": "object",
    "required": ["linkShortCode", "eventName"],
    "properties": {
        "linkShortCode": {"type": "string", "pattern": "^[A-Za-z0-9]{4,32}$"},
        "eventName": {"type": "string", "maxLength": 128, "description": "lowercased, then ^[a-z][a-z0-9_]*$; not click/install/impression/open"},
        "entityId": {"type": "string", "maxLength": 255},
    },
}
LINK_BODY = {
    "type": "object",
    "properties": {
        "destinationUrl": {"type": "string", "format": "uri"},
        "iosUrl": {"type": "string", "format": "uri"},
        "androidUrl": {"type": "string", "format": "uri"},
        "shortCode": {"type": "string", "pattern": "^[A-Za-z0-9]{4,32}$"},
        "campaign": {"type": "string", "maxLength": 255},
        "referrerUserId": {"type": "string", "maxLength": 255},
        "metadata": {"type": "object", "properties": {"title": {"type": "string"}, "description": {"type": "string"}, "imageUrl": {"type": "string"}}},
        "expiresAt": {"type": "string", "format": "date-time"},
    },
}
RANGE = [query("from", description="ISO-8601, default to minus 30 days"), query("to", description="ISO-8601, default now plus 1 hour"),
         query("shortCode"), query("eventName")]

paths = {
    "/api/v1/events": {"post": op("Ingest one post-install event (Scale plan)",
        {"202": "Queued: the broker has the event", "200": "Deduplicated: this (link, event, entity) was already recorded"},
        ["400", "401", "403", "404", "413", "429", "503"], body=EVENT, tag="ingest")},
    "/api/v1/events/batch": {"post": op("Ingest up to 1,000 events (1 MiB); one result per event, in order",
        {"200": "Per-event results"}, ["400", "401", "403", "413", "429", "503"],
        body={"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "maxItems": 1000, "items": EVENT}}}, tag="ingest")},
    "/api/v1/capture-event": {"post": op("Linkrunner-compatible event capture (header linkrunner-key)",
        {"201": "{\"msg\": \"Event capture request received!\", \"status\": 200, \"data\": null}"},
        ["400", "401", "413", "429", "503"], security="linkrunnerKey",
        body={"type": "object", "required": ["event_name", "user_id"], "properties": {
            "event_name": {"type": "string"}, "user_id": {"type": "string", "maxLength": 255}, "event_data": {"type": "object"}}}, tag="ingest")},
    "/api/v1/referral-links": {
        "post": op("Create a referral link", {"201": "The link"}, ["400", "401", "403", "409", "413", "503"], body=LINK_BODY),
        "get": op("List the account's links, newest first", {"200": "A page of links and nextCursor"}, ["400", "401", "403", "503"],
                  params=[query("limit", description="1-200, default 50"), query("cursor")]),
    },
    "/api/v1/referral-links/metadata": {"get": op("A link as created, with its click, install and event totals",
        {"200": "The link and totals"}, ["400", "401", "403", "404", "503"], params=[query("shortCode", True)])},
    "/api/v1/referral-links/{shortCode}": {
        "patch": op("Change a link's fields", {"200": "The link"}, ["400", "401", "403", "404", "413", "503"], body=LINK_BODY, params=[path_param("shortCode")]),
        "delete": op("Delete a link", {"200": "Deleted"}, ["401", "403", "404", "503"], params=[path_param("shortCode")]),
    },
    "/api/v1/attributions": {"post": op("Attribute a user's install: shortCode, clickId, fingerprint, else organic; first wins",
        {"201": "Attributed now", "200": "Attributed before: the original result"}, ["400", "401", "403", "404", "413", "503"],
        body={"type": "object", "required": ["userId"], "properties": {k: {"type": "string"} for k in ["userId", "shortCode", "clickId", "ip", "userAgent", "platform"]}})},
    "/api/v1/analytics/totals": {"get": op("Exact totals per link and event name", {"200": "Totals"}, ["400", "401", "403", "503"], params=RANGE)},
    "/api/v1/analytics/timeseries": {"get": op("Counts per hour or day", {"200": "Points"}, ["400", "401", "403", "503"],
        params=RANGE + [query("interval", description="hour or day")])},
    "/api/v1/analytics/funnel": {"get": op("Click, install, then each post-install event", {"200": "The funnel"}, ["400", "401", "403", "503"], params=RANGE)},
    "/api/v1/analytics/top-links": {"get": op("Links with the most events of a name (clicks by default)", {"200": "Links"}, ["400", "401", "403", "503"],
        params=RANGE + [query("limit", description="1-100, default 10")])},
    "/l/{shortCode}": {"get": {"summary": "Follow a link: 302 to the device's URL, recording a click", "tags": ["redirect"],
        "parameters": [path_param("shortCode")],
        "responses": {"302": {"description": "Redirect; header x-linktrace-click-id"}, "404": {"description": "Unknown or expired link (HTML page)"},
                      "503": {"description": "Link store unavailable (HTML page)"}}}},
    "/admin/v1/accounts": {"post": op("Create an account with its live and test keys (shown once)", {"201": "accountId, apiKey, testApiKey"},
        ["400", "401", "413", "503"], security="adminToken",
        body={"type": "object", "required": ["name", "plan"], "properties": {"name": {"type": "string"}, "plan": {"type": "string"}}}, tag="admin")},
    "/admin/v1/accounts/{accountId}/plan": {"put": op("Change an account's plan", {"200": "Changed"}, ["400", "401", "404", "413", "503"],
        security="adminToken", body={"type": "object", "required": ["plan"], "properties": {"plan": {"type": "string"}}}, params=[path_param("accountId")], tag="admin")},
    "/admin/v1/accounts/{accountId}/keys/revoke": {"post": op("Revoke the key of an environment without issuing another", {"200": "Revoked"},
        ["400", "401", "404", "413", "503"], security="adminToken",
        body={"type": "object", "required": ["environment"], "properties": {"environment": {"type": "string", "enum": ["live", "test"]}}},
        params=[path_param("accountId")], tag="admin")},
    "/admin/v1/accounts/{accountId}/keys/rotate": {"post": op("Revoke the current key of an environment and issue a new one", {"200": "The new key"},
        ["400", "401", "404", "413", "503"], security="adminToken",
        body={"type": "object", "required": ["environment"], "properties": {"environment": {"type": "string", "enum": ["live", "test"]}}},
        params=[path_param("accountId")], tag="admin")},
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
