-- wrk script: each request carries one of 512 session cookies at random, so
-- requests spread over many sessions as real traffic does (and sometimes
-- meet a session another request holds). Prints one JSON line at the end.
local sessions = 512
local threads = 0
local path = os.getenv("BENCH_PAGE") or "/page.php"

setup = function(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

init = function(args)
  math.randomseed(seed * 7919 + os.time())
end

request = function()
  local id = math.random(sessions)
  return wrk.format("GET", path, { ["Cookie"] = "PHPSESSID=fpmbench" .. id })
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
