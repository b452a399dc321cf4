-- POST /api/v1/events with a fresh entityId per request: the dedup path (claim in
-- Postgres, produce, mark queued) on every request.
-- (`worker` is set per thread by setup(); a `local` of that name would shadow it.)
local counter = 0
local next_worker = 0
local run = os.getenv("LT_RUN")
function setup(thread)
  thread:set("worker", next_worker)
  next_worker = next_worker + 1
end
function request()
  counter = counter + 1
  local body = '{"linkShortCode":"' .. os.getenv("LT_CODE") .. '","eventName":"purchase","entityId":"'
    .. run .. '-' .. worker .. '-' .. counter .. '"}'
  return wrk.format("POST", "/api/v1/events",
    { ["content-type"] = "application/json", ["x-api-key"] = os.getenv("LT_KEY") }, body)
end
