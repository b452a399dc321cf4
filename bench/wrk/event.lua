-- POST /api/v1/events, the same small event every time (no entityId: the plain path).
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("LT_KEY")
wrk.body = '{"linkShortCode":"' .. os.getenv("LT_CODE") .. '","eventName":"purchase"}'
