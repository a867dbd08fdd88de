# Sourced by scripts/test and bench scripts: a throwaway PostgreSQL + PostGIS cluster.
#
# `start_throwaway_pg` starts a cluster on a free port in a temporary folder (as the
# unprivileged `postgres` user when run as root, since PostgreSQL refuses root), installs
# PostgreSQL and PostGIS from Debian's packages first when they are missing and we are root
# (otherwise it prints the command), exports DATABASE_URL, PGTEST_BIN and PGTEST_DATA, and
# registers `stop_throwaway_pg` to run on exit.

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$d/initdb" ]] && ls "/usr/share/postgresql/$(basename "$(dirname "$d")")/extension/postgis.control" >/dev/null 2>&1; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

install_postgis() {
  local pkgs="postgresql postgresql-contrib postgis"
  if [[ $(id -u) -ne 0 ]]; then
    echo "PostgreSQL with PostGIS is not installed. Install it with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
    exit 1
  fi
  echo "installing $pkgs from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
}

# ensure_command CMD PACKAGE: installs PACKAGE from Debian's packages when CMD is missing.
ensure_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$1 is not installed. Install it with: sudo apt-get install -y $2" >&2
    exit 1
  fi
  echo "installing $2 from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# ensure_python_module MODULE PACKAGE: installs PACKAGE from PyPI when MODULE cannot be imported.
ensure_python_module() {
  python3 -c "import $1" >/dev/null 2>&1 && return 0
  echo "installing $2 from PyPI" >&2
  # Debian's own Python refuses installs outside a venv (PEP 668); pyenv's takes them as asked.
  python3 -m pip install --quiet --disable-pip-version-check "$2" 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$2"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PG_AS=()
stop_throwaway_pg() {
  if [[ -n "${PGTEST_TMP:-}" ]]; then
    "${PG_AS[@]}" "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGTEST_TMP"
    PGTEST_TMP=""
  fi
}

start_throwaway_pg() {
  PGTEST_BIN="$(pg_bin)" || { install_postgis; PGTEST_BIN="$(pg_bin)"; }
  PGTEST_TMP="$(mktemp -d /tmp/coeqwal-pg.XXXXXX)"
  PGTEST_DATA="$PGTEST_TMP/data"
  local port
  port="$(free_port)"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PGTEST_TMP" postgres
    chown postgres "$PGTEST_TMP"
    PG_AS=(runuser -u postgres --)
  fi
  trap stop_throwaway_pg EXIT
  "${PG_AS[@]}" "$PGTEST_BIN/initdb" -D "$PGTEST_DATA" -U postgres --auth=trust -E UTF8 >"$PGTEST_TMP/initdb.log" 2>&1 \
    || { cat "$PGTEST_TMP/initdb.log" >&2; exit 1; }
  "${PG_AS[@]}" "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DATA" -l "$PGTEST_TMP/server.log" -w -t 60 \
    -o "-p $port -k $PGTEST_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB" \
    start >/dev/null || { cat "$PGTEST_TMP/server.log" >&2; exit 1; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export PGTEST_BIN PGTEST_DATA PGTEST_TMP
  echo "throwaway PostGIS on port $port ($PGTEST_TMP)" >&2
}
