#!/usr/bin/env bash
# Workshop load: 100 concurrent clients for 60 s on a mixed workload against PostGIS with the
# CalSim3 data, with the server's memory (RSS) sampled every second.
#
#   bench/mixed-load.sh            (DURATION=60s CONNS=100 by default)
#
# The URL list (fixed seed) mixes what a workshop asks for: tiles at z 6-14 over the data (all
# three layers; 60 %), GeoJSON bbox pages of arcs and nodes (15 %), upstream/downstream walks
# and node summaries of random nodes (15 %), and searches (10 %). wrk (bench/urls.lua) rotates
# over it with gzip accepted. Starts a throwaway PostGIS unless DATABASE_URL is set. Prints
# requests/s, p50/p95/p99, errors (non-2xx/304 included) and the RSS curve.
#
# With CHECK=1 (what `scripts/test --long` sets) it also fails (exit 1) when any request failed
# or when memory grew after the first pass (the largest RSS of the last two thirds above the
# largest of the first sixth by more than 10 % plus 16 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

DURATION="${DURATION:-60s}"
CONNS="${CONNS:-100}"
DATA="${CALSIM3_DATA:-$(cd .. && pwd)/shared/data/calsim3}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
command -v wrk >/dev/null || ensure_command wrk wrk
cargo build --release -q
BIN="$PWD/target/release/coeqwal-network-api"
OUT="$(mktemp -d)"
PIDS=()
OWN_PG=0
# Stops only a cluster of this script's own (under scripts/test --long, the caller's stays).
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"; [[ "$OWN_PG" == 0 ]] || stop_throwaway_pg; }
trap cleanup EXIT
if [[ -z "${DATABASE_URL:-}" ]]; then
  start_throwaway_pg
  OWN_PG=1
fi
trap cleanup EXIT
"$BIN" migrate >/dev/null 2>&1
"$BIN" import --quiet "$DATA" >/dev/null 2>&1

python3 - "$OUT/urls.txt" "$DATA" <<'PY'
import json, math, random, sys
out, data = sys.argv[1], sys.argv[2]
rnd = random.Random(20261203)
codes = [f["properties"]["short_code"] for f in json.load(open(f"{data}/nodes.geojson"))["features"]]
def tile(lon, lat, z):
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
urls = []
for _ in range(6000):
    r = rnd.random()
    if r < 0.60:
        z = rnd.choice([6, 7, 8, 9, 10, 11, 12, 13, 14])
        lon, lat = rnd.uniform(-122.6, -119.8), rnd.uniform(36.2, 40.7)
        x, y = tile(lon, lat, z)
        urls.append(f"/tiles/nodes,arcs,demand_units/{z}/{x}/{y}.mvt")
    elif r < 0.75:
        lon, lat, d = rnd.uniform(-122.5, -120.2), rnd.uniform(36.5, 40.2), rnd.choice([0.1, 0.25, 0.5])
        layer = rnd.choice(["arcs", "nodes"])
        urls.append(f"/collections/{layer}/items?bbox={lon:.3f},{lat:.3f},{lon + d:.3f},{lat + d:.3f}&limit=200")
    elif r < 0.90:
        code = rnd.choice(codes)
        urls.append(rnd.choice([f"/network/nodes/{code}/downstream", f"/network/nodes/{code}/upstream?max_depth=20", f"/network/nodes/{code}"]))
    else:
        urls.append(f"/api/search?q={rnd.choice(codes)[:3]}&limit=10")
open(out, "w").write("\n".join(urls) + "\n")
PY

PORT="$(free_port)"
NO_COLOR=1 "$BIN" serve --listen "127.0.0.1:$PORT" >"$OUT/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
echo "RSS after start: $(rss) KiB"
( while kill -0 "$SERVER" 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 1; done ) >"$OUT/rss.txt" &
PIDS+=("$!")
URLS_FILE="$OUT/urls.txt" PERCENTILES=1 wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s -s bench/urls.lua "http://127.0.0.1:$PORT" 2>"$OUT/summary.json" >"$OUT/wrk.txt"
cat "$OUT/wrk.txt"
echo "summary: $(cat "$OUT/summary.json")"
python3 - "$OUT/rss.txt" "$OUT/summary.json" "${CHECK:-0}" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
kib = [int(r[1]) for r in rows]
summary = json.load(open(sys.argv[2]))
check = sys.argv[3] == "1"
problems = []
if kib:
    n = len(kib)
    first_pass = max(kib[: max(1, n // 6)])
    later = kib[n // 3 :] or kib
    print(f"RSS KiB: start {kib[0]}, max in first sixth {first_pass}, max in last two thirds {max(later)}, last {kib[-1]} ({n} samples)")
    print("RSS curve (every 5 s, MiB): " + " ".join(str(round(k / 1024)) for k in kib[::5]))
    if max(later) > first_pass * 1.10 + 16 * 1024:
        problems.append(f"memory grew after the first pass: {first_pass} KiB -> {max(later)} KiB")
else:
    problems.append("no RSS samples")
if summary["errors"] > 0:
    problems.append(f"{summary['errors']} failed requests ({summary['non2xx']} non-2xx/304)")
if summary["requests"] == 0:
    problems.append("no requests completed")
if check:
    for p in problems:
        print(f"mixed-load: FAIL: {p}")
    print(f"mixed-load: {summary['requests']} requests, p95 {summary['p95']} ms, p99 {summary['p99']} ms")
    if problems:
        sys.exit(1)
PY
echo "answers by status (from /metrics):"
curl -s "http://127.0.0.1:$PORT/metrics" | python3 -c '
import re, sys, collections
by = collections.Counter()
for line in sys.stdin:
    m = re.match(r"http_requests_total\{.*status=\"(\d+)\".*\} (\S+)", line)
    if m: by[m.group(1)] += float(m.group(2))
for k, v in sorted(by.items()): print(f"  status {k}: {int(v)}")'
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^(db_requests_refused_total|tile_cache_(hits|misses)_total)' | sed 's/^/  /' | head -8
echo "server warnings: $(grep -c WARN "$OUT/server.log" || true); kinds:"
# No warning at all is the good case: grep's exit 1 must not fail the script.
{ grep WARN "$OUT/server.log" || true; } | sed -E 's/.*WARN[^a-z]*//; s/\x1b\[[0-9;]*m//g' | cut -c1-80 | sort | uniq -c | sort -rn | head -5
