-- wrk script: requests the URLs listed in the file named by URLS_FILE (one per line, paths or
-- full URLs), each thread starting at a different place, and prints one JSON line at the end:
-- requests/s, p50 and p99 latency (ms), and errors (connect, read, write, timeout, non-2xx/304).
local paths = {}
local counter = 0

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

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.stderr:write(string.format(
    '{"rps": %.1f, "p50": %.3f, "p95": %.3f, "p99": %.3f, "max": %.3f, "errors": %d, "non2xx": %d, "requests": %d}\n',
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, e.status, summary.requests))
end
