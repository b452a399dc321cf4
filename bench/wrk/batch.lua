-- POST /api/v1/events/batch with BATCH events per request.
local n = tonumber(os.getenv("LT_BATCH") or "100")
local items = {}
for i = 1, n do
  items[i] = '{"linkShortCode":"' .. os.getenv("LT_CODE") .. '","eventName":"purchase"}'
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("LT_KEY")
wrk.body = '{"events":[' .. table.concat(items, ",") .. ']}'
