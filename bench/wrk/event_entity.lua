-- POST /api/v1/events with a fresh entityId per request: the dedup path (claim in
-- Postgres, produce, mark queued) on every request.
local counter = 0
local thread_id = 0
local run = os.getenv("LT_RUN")
function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
function request()
  counter = counter + 1
  local body = '{"linkShortCode":"' .. os.getenv("LT_CODE") .. '","eventName":"purchase","entityId":"'
    .. run .. '-' .. thread_id .. '-' .. counter .. '"}'
  return wrk.format("POST", "/api/v1/events",
    { ["content-type"] = "application/json", ["x-api-key"] = os.getenv("LT_KEY") }, body)
end
