"""schemathesis hooks (loaded by deploy/schemathesis.sh through SCHEMATHESIS_HOOKS).

Random short codes and account ids almost never exist, so without these nearly every
generated request would end at 404 and the core of each endpoint (produce to the broker,
quota, ClickHouse reads, link updates, key rotation) would go untested. Half of the drawn
short codes (chosen by the drawn value itself, so shrinking stays deterministic) are
replaced by a link that exists; the other half still probe the 404 path. Account ids
always point at a sacrificial account, never at the one whose key the run uses. Webhook ids
in paths are, half the time, a webhook made for the run.
"""
import os

import schemathesis

LINK = os.environ["SCHEMATHESIS_LINK"]
SPARE_ACCOUNT = os.environ["SCHEMATHESIS_SPARE_ACCOUNT"]
WEBHOOK = os.environ["SCHEMATHESIS_WEBHOOK"]


def existing(code):
    """The known link for about half of the drawn codes; the drawn code otherwise."""
    if isinstance(code, str) and len(code) % 2 == 0:
        return LINK
    return code


def operation(ctx):
    return ctx.operation.method.upper(), ctx.operation.path


@schemathesis.hook
def map_body(ctx, body):
    method, path = operation(ctx)
    if not isinstance(body, dict):
        return body
    if path == "/api/v1/events" and "linkShortCode" in body:
        body["linkShortCode"] = existing(body["linkShortCode"])
    elif path == "/api/v1/events/batch" and isinstance(body.get("events"), list):
        for event in body["events"]:
            if isinstance(event, dict) and "linkShortCode" in event:
                event["linkShortCode"] = existing(event["linkShortCode"])
    elif path == "/api/v1/attributions" and "shortCode" in body:
        body["shortCode"] = existing(body["shortCode"])
    return body


@schemathesis.hook
def map_query(ctx, query):
    if query and "shortCode" in query:
        query["shortCode"] = existing(query["shortCode"])
    return query


@schemathesis.hook
def map_path_parameters(ctx, parameters):
    method, path = operation(ctx)
    if not parameters:
        return parameters
    if "accountId" in parameters:
        parameters["accountId"] = SPARE_ACCOUNT
    # DELETE keeps its drawn codes and ids: the shared link and webhook must outlive the run.
    if "shortCode" in parameters and method != "DELETE":
        parameters["shortCode"] = existing(parameters["shortCode"])
    if "id" in parameters and path.startswith("/api/v1/webhooks/") and method != "DELETE":
        drawn = parameters["id"]
        if isinstance(drawn, str) and sum(map(ord, drawn)) % 2 == 0:
            parameters["id"] = WEBHOOK
    return parameters
