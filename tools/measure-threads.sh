#!/usr/bin/env bash
# measure-threads.sh: where the server's CPU goes, per thread, per hello workflow.
#
# usage: tools/measure-threads.sh [BUILD_DIR] [N]      (defaults: build, 30000)
#
# Starts its own genesis-temporal (start-dev on free ports, SQLite file in a temp dir),
# warms it up with 4,000 hello workflows, reads every thread's user and system CPU time
# (/proc/PID/task/*/stat), runs `gtbench -n N -c 100` (hello, closed loop), reads them
# again and prints gtbench's line, then one line per thread name:
#   gt-sqlite-w  user 0.057 sys 0.020 ms/wf
# and the total. The same figure as gtbench's "server CPU ms/wf", split by thread (the
# kernel's work for a thread counts as its sys time). Threads of one name (the scheduler
# threads, the readers) are summed per name.
#
# Exit status: 0 measured; 1 gtbench failed; 2 the server or gtbench is missing or the
# server did not start.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
N=${2:-30000}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/genesis-temporal"
GTBENCH="$BUILD/tools/gtbench"
for f in "$SERVER" "$GTBENCH"; do
  [ -x "$f" ] || { echo "measure-threads: $f not built (run make build)" >&2; exit 2; }
done

# shellcheck source=tools/lib/server.sh
. "$ROOT/tools/lib/server.sh"

TMP=$(mktemp -d /tmp/gt-threads.XXXXXX)
PID=""
cleanup() {
  [ -n "$PID" ] && stop_pid "$PID"
  rm -rf "$TMP"
}
trap cleanup EXIT

PORT=$(free_port) || { echo "measure-threads: no free port" >&2; exit 2; }
HTTP_PORT=$(free_port) || { echo "measure-threads: no free port" >&2; exit 2; }
"$SERVER" server start-dev --ip 127.0.0.1 --port "$PORT" --http-port "$HTTP_PORT" --headless \
  --log-level warn --db-filename "$TMP/db.sqlite" >"$TMP/server.log" 2>&1 &
PID=$!
if ! wait_listening "$PID" "$PORT"; then
  echo "measure-threads: the server did not start; its log ends with:" >&2
  tail -n 5 "$TMP/server.log" >&2
  PID=""
  exit 2
fi

# thread name, user ticks, system ticks (fields 14 and 15 of stat), summed per name
snapshot() {
  for t in /proc/"$PID"/task/*; do
    printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14, $15}' "$t/stat")"
  done | awk '{u[$1] += $2; s[$1] += $3} END {for (k in u) print k, u[k], s[k]}' | sort
}

"$GTBENCH" --addr "127.0.0.1:$PORT" -n 4000 -c 100 >/dev/null 2>&1 ||
  { echo "measure-threads: the warmup failed" >&2; exit 1; }
snapshot >"$TMP/before"
"$GTBENCH" --addr "127.0.0.1:$PORT" -n "$N" -c 100 --server-pid "$PID" >"$TMP/bench.txt" 2>&1 ||
  { echo "measure-threads: gtbench failed:" >&2; tail -n 5 "$TMP/bench.txt" >&2; exit 1; }
snapshot >"$TMP/after"
grep '^gtbench:' "$TMP/bench.txt"
TICK_MS=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN {print 1000 / hz}')
join "$TMP/before" "$TMP/after" |
  awk -v n="$N" -v tick="$TICK_MS" '
    { u = ($4 - $2) * tick / n; s = ($5 - $3) * tick / n; tu += u; ts += s
      if (u + s > 0) printf "%-16s user %.3f sys %.3f ms/wf\n", $1, u, s }
    END { printf "%-16s user %.3f sys %.3f ms/wf (%.3f)\n", "total", tu, ts, tu + ts }'
