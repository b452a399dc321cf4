-- Link clicks as the world sends them: people on phones, tablets and desktops, crawlers and
-- preview fetchers (1 in 5), from addresses in several countries (named by the gateway's
-- X-Forwarded-For, as nginx sends it), with and without UTM parameters and referrers.
local agents = {
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
  "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
}
local addresses = { "8.8.8.8", "193.99.144.80", "1.1.1.1", "81.2.69.160", "200.160.2.3",
  "103.21.244.1", "2001:4860:4860::8888", "41.0.0.1", "100.64.0.1", "185.60.216.35" }
local referrers = { "https://www.google.com/search?q=shoes", "", "https://t.co/abc", "", "https://news.ycombinator.com/" }
local queries = { "?utm_source=newsletter&utm_medium=email&utm_campaign=black_friday", "", "?utm_source=twitter", "" }
local n = 0
request = function()
  n = n + 1
  local headers = {
    ["User-Agent"] = agents[n % #agents + 1],
    ["X-Forwarded-For"] = addresses[(n * 7) % #addresses + 1],
  }
  local referrer = referrers[(n * 3) % #referrers + 1]
  if referrer ~= "" then headers["Referer"] = referrer end
  return wrk.format("GET", wrk.path .. queries[(n * 5) % #queries + 1], headers)
end
