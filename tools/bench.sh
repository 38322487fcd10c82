#!/usr/bin/env bash
# bench.sh: what `make bench` runs. Builds nothing (make bench depends on build).
#
# For each store it starts its own genesis-temporal on free ports, reads the idle RSS,
# runs gtbench (hello closed loop, then steps10 closed loop) against it, stops it, and
# at the end prints one Markdown table. Stores: SQLite in memory, SQLite file (in a temp
# dir), and PostgreSQL (once with one database, once with visibility in a second one)
# when tools/pg-test-server.sh exists and the server accepts a postgres config (otherwise
# skipped with a note).
#
# `bench.sh --smoke` instead starts one in-memory server, runs `gtbench --smoke` (20 hello
# workflows, each verified by its close event) and exits with gtbench's status (0 = all
# completed); for `make test`.
#
# Environment (all optional):
#   BUILD=build           the build directory holding genesis-temporal and tools/gtbench
#   BENCH_DURATION=10     seconds of each measurement window
#   BENCH_WARMUP=2        seconds of warmup before each window
#   BENCH_STORES="sqlite-mem sqlite-file postgres postgres-vis"
#                         postgres-vis: PostgreSQL with the visibility store in a second
#                         database (as config/production.yaml), through the outbox
#   BENCH_SLEEPERS=100000 open workflows sleeping on a timer for the memory line (0: skip)
#   BENCH_KEEP=1          keep the temp dir (server logs) after the run
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/genesis-temporal"
GTBENCH="$BUILD/tools/gtbench"
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
STORES=${BENCH_STORES:-"sqlite-mem sqlite-file postgres postgres-vis"}

for f in "$SERVER" "$GTBENCH"; do
  [ -x "$f" ] || { echo "bench: $f not built (run make build)" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/gtbench.XXXXXX)
chmod 711 "$TMP" # PostgreSQL runs as the postgres user and must reach $TMP/pg
SERVER_PID=""
PG_DIR=""
ROWS=()
NOTES=()

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ -n "$PG_DIR" ]; then
    bash "$ROOT/tools/pg-test-server.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
  fi
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$TMP"; else echo "bench: logs kept in $TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=tools/lib/server.sh
. "$ROOT/tools/lib/server.sh"

# start_server NAME ARGS...: starts the server, waits until its gRPC port answers.
# Sets SERVER_PID and PORT; returns non-zero (with the log tail) if it did not come up.
start_server() {
  local name=$1
  shift
  "$SERVER" "$@" >"$TMP/server-$name.log" 2>&1 &
  SERVER_PID=$!
  wait_listening "$SERVER_PID" "$PORT"
  case $? in
  0) return 0 ;;
  1)
    SERVER_PID=""
    echo "bench: $name: the server exited; its log ends with:" >&2
    tail -n 5 "$TMP/server-$name.log" >&2
    return 1
    ;;
  esac
  echo "bench: $name: the server did not listen on $PORT within 15 s" >&2
  stop_server
  return 1
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

# field KEY LINE: the value of KEY=... in gtbench's machine-readable line.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# run_load STORE WORKLOAD C: one gtbench run; appends a table row.
run_load() {
  local store=$1 wl=$2 c=$3 out line
  echo "bench: $store: $wl, closed loop c=$c, ${WARMUP}s warmup + ${DURATION}s" >&2
  out=$("$GTBENCH" --addr "127.0.0.1:$PORT" --workload "$wl" -c "$c" -d "$DURATION" \
        -w "$WARMUP" --server-pid "$SERVER_PID" 2>"$TMP/gtbench-$store-$wl.err")
  local rc=$?
  echo "$out" | sed 's/^/  /' >&2
  sed 's/^/  /' "$TMP/gtbench-$store-$wl.err" >&2
  line=$(tail -n 1 <<<"$out")
  if [ -z "$(field wf/s "$line")" ]; then
    ROWS+=("| $store | $wl c=$c | gtbench failed (exit $rc) | | | | | | |")
    return
  fi
  ROWS+=("| $store | $wl c=$c | $(field wf/s "$line") | $(field p50_ms "$line") | \
$(field p95_ms "$line") | $(field p99_ms "$line") | $(field server_cpu_ms_per_wf "$line") | \
$(field server_rss_mb "$line") | $(field completed "$line")/$(field failed "$line") |")
  [ "$(field status "$line")" = ok ] || NOTES+=("$store $wl: status $(field status "$line")")
}

# bench_store STORE SERVER-ARGS...: the fixed set of runs against one server, which
# listens on $PORT (set by the caller: the args name it).
bench_store() {
  local store=$1
  shift
  start_server "$store" "$@" || return 1
  sleep 1 # let start-up allocations settle before the idle sample
  ROWS+=("| $store | idle | | | | | | $(rss_mb "$SERVER_PID") | |")
  run_load "$store" hello 100
  run_load "$store" steps10 50
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    NOTES+=("$store: the server died during the run (log: $TMP/server-$store.log)")
    tail -n 20 "$TMP/server-$store.log" >&2
  fi
  grep -E " (WARN|ERROR) " "$TMP/server-$store.log" | head -n 5 | sed "s/^/  $store server: /" >&2
  stop_server
}

dev_args() { # start-dev flags on free ports
  local http
  http=$(free_port)
  echo "server start-dev --ip 127.0.0.1 --port $PORT --http-port $http --headless --log-level warn"
}

# pg_config FILE CONNINFO [VISDB]: a YAML config for the postgres store; with VISDB, the
# visibility store is that other database of the same server (as config/production.yaml).
pg_config() {
  local host port user db http memb vis=pg
  host=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$2")
  port=$(sed -n 's/.*port=\([^ ]*\).*/\1/p' <<<"$2")
  user=$(sed -n 's/.*user=\([^ ]*\).*/\1/p' <<<"$2")
  db=$(sed -n 's/.*dbname=\([^ ]*\).*/\1/p' <<<"$2")
  http=$(free_port)
  memb=$(free_port)
  [ -z "${3:-}" ] || vis=pgvis
  cat >"$1" <<EOF
log:
  stdout: true
  level: warn
  format: text
persistence:
  defaultStore: pg
  visibilityStore: $vis
  numHistoryShards: 4
  datastores:
    pg:
      sql:
        pluginName: "postgres"
        databaseName: "$db"
        connectAddr: "$host:$port"
        connectProtocol: "tcp"
        user: "$user"
        password: ""
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: "1h"
    pgvis:
      sql:
        pluginName: "postgres"
        databaseName: "${3:-unused}"
        connectAddr: "$host:$port"
        connectProtocol: "tcp"
        user: "$user"
        password: ""
        maxConns: 8
services:
  frontend:
    rpc:
      grpcPort: $PORT
      httpPort: $http
      membershipPort: $memb
      bindOnLocalHost: true
EOF
}

if [ "${1:-}" = "--smoke" ]; then
  PORT=$(free_port) || exit 2
  # shellcheck disable=SC2046
  start_server smoke $(dev_args) || exit 2
  "$GTBENCH" --addr "127.0.0.1:$PORT" --smoke --server-pid "$SERVER_PID"
  rc=$?
  [ $rc -eq 0 ] || tail -n 20 "$TMP/server-smoke.log" >&2
  exit $rc
fi

for store in $STORES; do
  case "$store" in
  sqlite-mem)
    PORT=$(free_port)
    # shellcheck disable=SC2046
    bench_store sqlite-mem $(dev_args) || NOTES+=("sqlite-mem: the server did not start")
    ;;
  sqlite-file)
    PORT=$(free_port)
    # shellcheck disable=SC2046
    bench_store sqlite-file $(dev_args) --db-filename "$TMP/bench.db" ||
      NOTES+=("sqlite-file: the server did not start")
    ;;
  postgres | postgres-vis)
    if [ ! -f "$ROOT/tools/pg-test-server.sh" ]; then
      NOTES+=("$store: skipped (tools/pg-test-server.sh does not exist)")
      continue
    fi
    PG_DIR="$TMP/pg"
    if ! conninfo=$(bash "$ROOT/tools/pg-test-server.sh" start "$PG_DIR" 2>"$TMP/pg-start.err"); then
      NOTES+=("$store: skipped (pg-test-server.sh start failed: $(tail -n 1 "$TMP/pg-start.err"))")
      continue
    fi
    PORT=$(free_port)
    visdb=""
    if [ "$store" = postgres-vis ]; then
      visdb=gt_visibility
      psql -X -q "$conninfo" -c "CREATE DATABASE $visdb" >"$TMP/pg-vis.err" 2>&1 ||
        NOTES+=("$store: CREATE DATABASE failed: $(tail -n 1 "$TMP/pg-vis.err")")
    fi
    pg_config "$TMP/$store.yaml" "$conninfo" "$visdb"
    if ! bench_store "$store" --config "$TMP/$store.yaml"; then
      NOTES+=("$store: skipped (the server does not accept the postgres config: $(grep -E 'ERROR|error' "$TMP/server-$store.log" | head -n 1))")
    fi
    bash "$ROOT/tools/pg-test-server.sh" stop "$PG_DIR" >/dev/null 2>&1
    PG_DIR=""
    ;;
  *)
    NOTES+=("$store: unknown store")
    ;;
  esac
done

echo
echo "gtbench on $(nproc) cores, ${DURATION}s windows after ${WARMUP}s warmup; latency = start sent -> completion acked"
echo
echo "| store | workload | wf/s | p50 ms | p95 ms | p99 ms | server CPU ms/wf | server RSS MB | completed/failed |"
echo "|---|---|---|---|---|---|---|---|---|"
[ ${#ROWS[@]} -eq 0 ] || printf '%s\n' "${ROWS[@]}"
for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo; echo "note: $n"; done

# Memory per open workflow sleeping on a timer (SQLite file), BENCH_SLEEPERS of them
# (0 skips it).
SLEEPERS=${BENCH_SLEEPERS:-100000}
if [ "$SLEEPERS" != 0 ]; then
  echo
  if ! line=$(bash "$ROOT/tools/measure-sleepers.sh" "$BUILD" "$SLEEPERS" 2>"$TMP/sleepers.err" |
    grep '^sleepers:'); then
    line="sleepers: measurement failed: $(tail -n 1 "$TMP/sleepers.err")"
  fi
  echo "$line"
fi
