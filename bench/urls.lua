-- wrk script: requests the URLs listed in the file named by URLS_FILE (one per line, paths or
-- full URLs), each thread starting at a different place, and prints one JSON line at the end:
-- requests/s, p50 and p99 latency (ms), and errors (connect, read, write, timeout, non-2xx/304).
-- With WRK_STATUS=1 it also counts the answers of 400 or more per thread, and prints the count
-- and the last one's status, content type and request id before that line (this costs wrk some
-- speed: every answer is handed to Lua).
local paths = {}
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("URLS_FILE"), "r"))
  for line in f:lines() do
    local path = line:gsub("^https?://[^/]+", "")
    if #path > 0 then table.insert(paths, path) end
  end
  f:close()
  counter = math.random(#paths)
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter], { ["Accept-Encoding"] = "gzip" })
end

if os.getenv("WRK_STATUS") == "1" then
  function response(status, headers, body)
    if status >= 400 then
      local key = status .. " " .. tostring(headers["content-type"] or headers["Content-Type"])
        .. " request id " .. tostring(headers["x-request-id"] or headers["X-Request-Id"])
      bad_count = (bad_count or 0) + 1
      bad_last = key
    end
  end
end

function done(summary, latency, requests)
  for i, t in ipairs(threads) do
    if t:get("bad_count") then
      io.stderr:write(string.format("thread %d: %d answers of 400 or more, last: %s\n",
        i, t:get("bad_count"), tostring(t:get("bad_last"))))
    end
  end
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.stderr:write(string.format(
    '{"rps": %.1f, "p50": %.3f, "p95": %.3f, "p99": %.3f, "max": %.3f, "errors": %d, "non2xx": %d, "requests": %d}\n',
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, e.status, summary.requests))
end
