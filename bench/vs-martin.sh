#!/usr/bin/env bash
# Side by side with Martin 1.14 on the same PostGIS tables, alternating the two servers.
#
#   bench/vs-martin.sh            (DURATION=20s by default; ROUNDS=2)
#
# Installs Martin from crates.io into bench/tools (ignored by git) and wrk from Debian's packages
# when missing, starts
# a throwaway PostGIS (or uses DATABASE_URL), imports the CalSim3 data and the 1,000,000-line
# synthetic table (bench/gen_lines.sql), then runs wrk (bench/urls.lua: rotates over a fixed URL
# list, gzip accepted) at 100 connections for a fixed duration:
#   warm:    500 fixed tiles z 6-12 over CalSim3 (all three layers), after one pass to fill caches
#   cold:    caches off on both, the same CalSim3 tiles; and z 8-10 tiles of the synthetic lines
#   memory:  our embedded memory source (--data) on the CalSim3 tiles, cache off
#   geojson: /collections/arcs/items?bbox= over random boxes (no Martin equivalent)
# Prints a Markdown table (requests/s, p50, p99, ratio to Martin) for bench/RESULTS.md, and
# leaves the servers' logs and every wrk report in bench/out/vs-martin (LOGS=DIR to change).
# WRK_STATUS=1 has wrk report the status, content type and request id of answers of 400 or more
# (bench/urls.lua; it slows wrk down, so not for the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

DURATION="${DURATION:-20s}"
ROUNDS="${ROUNDS:-2}"
CONNS="${CONNS:-100}"
DATA="${CALSIM3_DATA:-$(cd .. && pwd)/shared/data/calsim3}"
TOOLS="$PWD/bench/tools"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
command -v wrk >/dev/null || ensure_command wrk wrk
[[ -x "$TOOLS/bin/martin" ]] || cargo install martin@1.14.0 --locked --no-default-features --features postgres --root "$TOOLS"
cargo build --release -q
BIN="$PWD/target/release/coeqwal-network-api"
OUT="$(mktemp -d)"
PIDS=()
LOGS="${LOGS:-$PWD/bench/out/vs-martin}"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$LOGS"; mkdir -p "$LOGS"; cp "$OUT"/*.log "$OUT"/wrk-runs.txt "$LOGS"/ 2>/dev/null || true
  rm -rf "$OUT"; stop_throwaway_pg
}
trap cleanup EXIT

[[ -n "${DATABASE_URL:-}" ]] || start_throwaway_pg
trap cleanup EXIT  # start_throwaway_pg installed its own; ours stops it too
"$BIN" migrate >/dev/null
"$BIN" import --quiet "$DATA" >/dev/null
psql -q "$DATABASE_URL" -f bench/gen_lines.sql >/dev/null 2>&1

# Fixed tile lists (deterministic).
python3 - "$OUT" <<'EOF'
import math, random, sys
out = sys.argv[1]
def tile(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y
def tiles(bounds, zooms, count, seed):
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        z = rnd.choice(zooms)
        x0, y0 = tile(bounds[0], bounds[3], z)
        x1, y1 = tile(bounds[2], bounds[1], z)
        out.append((z, rnd.randint(x0, x1), rnd.randint(y0, y1)))
    return out
calsim = tiles((-122.8, 35.99, -119.71, 40.8), list(range(6, 13)), 500, 1)
lines = tiles((-125.0, 32.0, -113.0, 43.0), [8, 9, 10], 500, 2)
with open(f"{out}/calsim.txt", "w") as f:
    f.writelines(f"{z}/{x}/{y}\n" for z, x, y in calsim)
with open(f"{out}/lines.txt", "w") as f:
    f.writelines(f"{z}/{x}/{y}\n" for z, x, y in lines)
rnd = random.Random(3)
with open(f"{out}/boxes.txt", "w") as f:
    for _ in range(500):
        w, h = rnd.uniform(0.05, 0.5), rnd.uniform(0.05, 0.5)
        x, y = rnd.uniform(-122.8, -119.71 - w), rnd.uniform(35.99, 40.8 - h)
        f.write(f"{x:.4f},{y:.4f},{x + w:.4f},{y + h:.4f}\n")
EOF

martin_config() { # $1 port, $2 cache MB
  cat <<EOF
listen_addresses: "127.0.0.1:$1"
worker_processes: 2
cache_size_mb: $2
postgres:
  connection_string: "$DATABASE_URL"
  pool_size: 10
  auto_publish: false
  tables:
    nodes:
      schema: public
      table: network_node
      srid: 4326
      geometry_column: geom
      geometry_type: POINT
      id_column: id
      properties: {short_code: text, calsim_id: text, name: text, description: text, node_type: text, sub_type: text, river: text, river_mile: float8, stream_code: text, hydrologic_region: text, reservoir_name: text, capacity_taf: float8, dead_pool_taf: float8, surface_area_acres: float8, operational_purpose: text}
    arcs:
      schema: public
      table: network_arc
      srid: 4326
      geometry_column: geom
      geometry_type: LINESTRING
      id_column: id
      properties: {short_code: text, name: text, arc_type: text, sub_type: text, from_node: text, to_node: text, river: text, hydrologic_region: text, length_m: float8}
    demand_units:
      schema: public
      table: demand_unit
      srid: 4326
      geometry_column: geom_valid
      geometry_type: MULTIPOLYGON
      id_column: id
      properties: {du_id: text, kind: text, name: text, acres: float8}
    synthetic:
      schema: public
      table: synthetic_line
      srid: 4326
      geometry_column: geom
      geometry_type: LINESTRING
      id_column: id
      properties: {kind: int4}
EOF
}

wait_up() { # $1 url
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not come up" >&2; exit 1
}

start_ours() { # $1 port, $2 cache MB, extra args...
  local port=$1 cache=$2; shift 2
  RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --cache-size-mb "$cache" "$@" >>"$OUT/ours-$port.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$port/health"
}

start_martin() { # $1 port, $2 cache MB
  martin_config "$1" "$2" >"$OUT/martin-$1.yaml"
  RUST_LOG=warn "$TOOLS/bin/martin" --config "$OUT/martin-$1.yaml" >>"$OUT/martin-$1.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$1/catalog"
}

stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }

urls() { # $1 list file, $2 prefix, $3 suffix -> url file
  sed "s|^|$2|; s|$|$3|" "$1" >"$OUT/urls.txt"
  echo "$OUT/urls.txt"
}

fill() { # $1 url file: one sequential pass
  while read -r u; do curl -s -o /dev/null -H 'Accept-Encoding: gzip' "$u"; done <"$1"
}

# Runs wrk (2 threads) over a URL file; prints "rps p50_ms p99_ms errors".
load() { # $1 url file, $2 connections
  local base
  base=$(head -1 "$1" | grep -o '^http://[^/]*')
  URLS_FILE="$1" wrk -t2 -c "$2" -d "$DURATION" -s bench/urls.lua "$base" >"$OUT/wrk.out" 2>"$OUT/wrk.json" \
    || { echo "wrk failed on $1:" >&2; cat "$OUT/wrk.out" "$OUT/wrk.json" >&2; exit 1; }
  { echo "== $(basename "$1"), $2 connections"; cat "$OUT/wrk.out" "$OUT/wrk.json"; } >>"$OUT/wrk-runs.txt"
  python3 -c 'import json, sys; d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print("%.0f %.1f %.1f %d" % (d["rps"], d["p50"], d["p99"], d["errors"]))' "$OUT/wrk.json"
}

best() { sort -n -r | awk 'NR == 1'; }  # awk reads everything: no SIGPIPE under pipefail

declare -A RESULT
compare() { # $1 name, $2 ours url file, $3 martin url file, $4 conns
  local o m
  for r in $(seq 1 "$ROUNDS"); do
    o=$(load "$2" "$4"); echo "$o" >>"$OUT/$1.ours"
    m=$(load "$3" "$4"); echo "$m" >>"$OUT/$1.martin"
  done
  RESULT[$1]="$(best <"$OUT/$1.ours")|$(best <"$OUT/$1.martin")"
}

row() { # name, description
  IFS='|' read -r o m <<<"${RESULT[$1]}"
  read -r orps op50 op99 oerr <<<"$o"
  read -r mrps mp50 mp99 merr <<<"$m"
  ratio=$(python3 -c "print(f'{$orps / max($mrps, 1):.2f}')")
  echo "| $2 | $orps | $op50 | $op99 | $oerr | $mrps | $mp50 | $mp99 | $merr | $ratio |"
}

OP=18001; MP=18002
# Warm: caches on, one pass to fill, then load.
start_ours $OP 256; start_martin $MP 512
OU=$(urls "$OUT/calsim.txt" "http://127.0.0.1:$OP/tiles/nodes,arcs,demand_units/" ".mvt"); cp "$OU" "$OUT/warm.ours"
MU=$(urls "$OUT/calsim.txt" "http://127.0.0.1:$MP/nodes,arcs,demand_units/" ""); cp "$MU" "$OUT/warm.martin"
fill "$OUT/warm.ours"; fill "$OUT/warm.martin"
compare warm "$OUT/warm.ours" "$OUT/warm.martin" "$CONNS"
stop_all

# Cold: caches off on both.
start_ours $OP 0; start_martin $MP 0
urls "$OUT/calsim.txt" "http://127.0.0.1:$OP/tiles/nodes,arcs,demand_units/" ".mvt" >/dev/null; cp "$OUT/urls.txt" "$OUT/cold.ours"
urls "$OUT/calsim.txt" "http://127.0.0.1:$MP/nodes,arcs,demand_units/" "" >/dev/null; cp "$OUT/urls.txt" "$OUT/cold.martin"
compare cold "$OUT/cold.ours" "$OUT/cold.martin" "$CONNS"
stop_all
start_ours $OP 0 --config bench/synthetic.toml; start_martin $MP 0
urls "$OUT/lines.txt" "http://127.0.0.1:$OP/tiles/synthetic/" ".mvt" >/dev/null; cp "$OUT/urls.txt" "$OUT/lines.ours"
urls "$OUT/lines.txt" "http://127.0.0.1:$MP/synthetic/" "" >/dev/null; cp "$OUT/urls.txt" "$OUT/lines.martin"
compare lines "$OUT/lines.ours" "$OUT/lines.martin" 10
stop_all

# Memory source (no database), cache off, against Martin's cold figures.
RUST_LOG=warn DATABASE_URL= "$BIN" serve --data "$DATA" --listen "127.0.0.1:$OP" --cache-size-mb 0 >"$OUT/mem.log" 2>&1 &
PIDS+=($!); wait_up "http://127.0.0.1:$OP/health"
for r in $(seq 1 "$ROUNDS"); do load "$OUT/cold.ours" "$CONNS" >>"$OUT/memory.ours"; done
stop_all

# Memory source on the synthetic lines (exported from PostGIS as GeoJSON), cache off.
mkdir -p "$OUT/syn"
psql -At "$DATABASE_URL" -c "COPY (SELECT json_build_object('type', 'FeatureCollection', 'features',
    json_agg(json_build_object('type', 'Feature', 'id', id, 'geometry', ST_AsGeoJSON(geom)::json,
    'properties', json_build_object('kind', kind)))) FROM synthetic_line) TO STDOUT" >"$OUT/syn/synthetic.geojson"
RUST_LOG=warn DATABASE_URL= "$BIN" serve --config bench/synthetic.toml --data "$OUT/syn" --listen "127.0.0.1:$OP" --cache-size-mb 0 >"$OUT/memsyn.log" 2>&1 &
PIDS+=($!); wait_up "http://127.0.0.1:$OP/health"
for r in $(seq 1 "$ROUNDS"); do load "$OUT/lines.ours" 10 >>"$OUT/memsyn.ours"; done
stop_all

# GeoJSON pages over random boxes (absolute figures).
start_ours $OP 256
sed "s|^|http://127.0.0.1:$OP/collections/arcs/items?limit=1000\&bbox=|" "$OUT/boxes.txt" >"$OUT/geojson.ours"
for r in $(seq 1 "$ROUNDS"); do load "$OUT/geojson.ours" "$CONNS" >>"$OUT/geojson.res"; done
stop_all

echo "Duration $DURATION per run, best of $ROUNDS alternating rounds; gzip accepted."
echo
echo "| workload | ours req/s | ours p50 ms | ours p99 ms | ours errors | Martin req/s | Martin p50 ms | Martin p99 ms | Martin errors | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row warm "warm: 500 CalSim3 tiles z6-12, $CONNS connections"
row cold "cold: same tiles, caches off, $CONNS connections"
row lines "cold: 1,000,000 synthetic lines z8-10, 10 connections"
IFS='|' read -r _ m <<<"${RESULT[cold]}"
read -r mrps _ <<<"$m"
read -r orps op50 op99 oerr <<<"$(best <"$OUT/memory.ours")"
echo "| memory source (no database), CalSim3 tiles, cache off | $orps | $op50 | $op99 | $oerr | (cold) $mrps | | | | $(python3 -c "print(f'{$orps / max($mrps, 1):.2f}')") |"
IFS='|' read -r _ m <<<"${RESULT[lines]}"
read -r mrps _ <<<"$m"
read -r orps op50 op99 oerr <<<"$(best <"$OUT/memsyn.ours")"
echo "| memory source (no database), synthetic lines, cache off, 10 connections | $orps | $op50 | $op99 | $oerr | (cold) $mrps | | | | $(python3 -c "print(f'{$orps / max($mrps, 1):.2f}')") |"
read -r grps gp50 gp99 gerr <<<"$(best <"$OUT/geojson.res")"
echo "| GeoJSON: /collections/arcs/items?bbox= random boxes, limit 1000 | $grps | $gp50 | $gp99 | $gerr | n/a | | | | |"
