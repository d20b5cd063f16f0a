-- wrk script of bench/http.sh: POSTs JSON bodies read from a file, one per line, cycling
-- through them (each thread from its own offset), and prints one JSON line of figures when
-- the run ends.
--   wrk ... -s bench/http.lua URL -- BODIES_FILE PATH [DELAY_MS]
-- BODIES_FILE: request bodies, one JSON document a line; PATH: the request path
-- (/v1/online for Quiver, /get-online-features for Feast's feature server); DELAY_MS: a
-- pause each connection makes after an answer before its next request (a fixed rate of
-- about connections * 1000 / DELAY_MS requests a second while answers are quick; the
-- latencies measured exclude the pause). Without it, every connection sends at once.
-- The requests are formatted once in init(), so the timed loop only hands out strings.

local threads = {}
local count = 0

function setup(thread)
  thread:set("offset", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  local path = args[2]
  local headers = { ["Content-Type"] = "application/json" }
  requests_ = {}
  for line in file:lines() do
    if #line > 0 then
      table.insert(requests_, wrk.format("POST", path, headers, line))
    end
  end
  file:close()
  assert(#requests_ > 0, "no request body in " .. args[1])
  pause_ = tonumber(args[3] or "0") or 0
  -- Threads start at different bodies so they do not read the same entities in step.
  next_ = (tonumber(offset) or 0) * 7919 % #requests_ + 1
end

function request()
  local r = requests_[next_]
  next_ = next_ % #requests_ + 1
  return r
end

function delay()
  return pause_
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  -- wrk's latencies are in microseconds.
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "requests_per_s": %.1f, "p50_ms": %.4f, "p90_ms": %.4f, ' ..
    '"p99_ms": %.4f, "p999_ms": %.4f, "max_ms": %.4f, "mean_ms": %.4f, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
