#!/usr/bin/env bash
# measure-sleepers.sh: server memory per open workflow sleeping on a timer.
#
# usage: tools/measure-sleepers.sh [BUILD_DIR] [N]     (defaults: build, 100000)
#
# Starts its own genesis-temporal (start-dev on free ports, SQLite file in a temp dir),
# reads its idle VmRSS, runs `gtbench --workload sleep -n N -c 200` (each workflow's first
# task starts a 1 h timer, so N workflows stay open), waits 3 s for the server to
# settle, reads VmRSS again and prints one line:
#   sleepers: N; server RSS idle X kB, with them Y kB; Z kB per open workflow sleeping
#   on a timer; SQLite file S kB (+ WAL W kB); set up in T s
# then stops the server (SIGTERM) and removes the temp dir. The fast counterpart of
# tools/measure-open-memory.js (TypeScript SDK), which takes ~13 min for 100k.
#
# Exit status: 0 measured; 1 gtbench failed (or not all N sleepers were set up) or the
# server died; 2 the server or gtbench is missing or the server did not start.
#
# Environment (optional): SLEEPERS_C=200 (workflows in flight), SLEEPERS_KEEP=1 (keep
# the temp dir with the server log and the database).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
N=${2:-100000}
C=${SLEEPERS_C:-200}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/genesis-temporal"
GTBENCH="$BUILD/tools/gtbench"

for f in "$SERVER" "$GTBENCH"; do
  [ -x "$f" ] || { echo "measure-sleepers: $f not built" >&2; exit 2; }
done
case "$N" in '' | *[!0-9]* | 0)
  echo "measure-sleepers: N must be a positive integer, not '$N'" >&2; exit 2 ;;
esac

TMP=$(mktemp -d /tmp/gt-sleepers.XXXXXX)
DB="$TMP/sleepers.db"
LOG="$TMP/server.log"
SERVER_PID=""

# shellcheck source=tools/lib/server.sh
. "$ROOT/tools/lib/server.sh"

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_server
  if [ -z "${SLEEPERS_KEEP:-}" ]; then rm -rf "$TMP"; else echo "measure-sleepers: kept $TMP" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }

# died WHEN: reports a dead server with its log tail; exit 1.
died() {
  echo "measure-sleepers: the server died $1; its log ends with:" >&2
  tail -n 20 "$LOG" >&2
  SERVER_PID=""
  exit 1
}

PORT=$(free_port) || exit 2
HTTP=$(free_port) || exit 2
"$SERVER" server start-dev --ip 127.0.0.1 --port "$PORT" --http-port "$HTTP" --headless \
  --log-level warn --db-filename "$DB" >"$LOG" 2>&1 &
SERVER_PID=$!
wait_listening "$SERVER_PID" "$PORT"
case $? in
1) died "while starting" ;;
2) echo "measure-sleepers: the server did not listen on $PORT in 15 s" >&2; exit 2 ;;
esac
sleep 1 # let start-up allocations settle before the idle sample
IDLE=$(rss_kb "$SERVER_PID")
[ -n "$IDLE" ] || died "before the idle sample"

T0=$(date +%s.%N)
OUT=$("$GTBENCH" --addr "127.0.0.1:$PORT" --workload sleep -n "$N" -c "$C" \
      --server-pid "$SERVER_PID" 2>"$TMP/gtbench.err")
RC=$?
T1=$(date +%s.%N)
echo "$OUT" >&2
[ -s "$TMP/gtbench.err" ] && sed 's/^/  gtbench: /' "$TMP/gtbench.err" | head -n 20 >&2
alive || died "during the run"

# field KEY: the value of KEY=... in gtbench's machine-readable (last) line.
LINE=$(tail -n 1 <<<"$OUT")
field() { tr ' ' '\n' <<<"$LINE" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
if [ $RC -ne 0 ] || [ "$(field status)" != ok ] || [ "$(field completed)" != "$N" ] ||
   [ "$(field failed)" != 0 ]; then
  echo "measure-sleepers: gtbench failed (exit $RC, status=$(field status)," \
       "set up $(field completed) of $N, failed $(field failed))" >&2
  exit 1
fi

sleep 3 # let the server settle (write-behind, freed buffers) before the second sample
alive || died "after the run"
WITH=$(rss_kb "$SERVER_PID")
[ -n "$WITH" ] || died "before the second sample"
fsize_kb() { if [ -f "$1" ]; then echo $(($(stat -c %s "$1") / 1024)); else echo 0; fi; }
DB_KB=$(fsize_kb "$DB")
WAL_KB=$(fsize_kb "$DB-wal")
PER=$(awk -v a="$IDLE" -v b="$WITH" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }')
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
echo "sleepers: $N; server RSS idle $IDLE kB, with them $WITH kB; $PER kB per open" \
     "workflow sleeping on a timer; SQLite file $DB_KB kB (+ WAL $WAL_KB kB);" \
     "set up in $SECS s"
stop_server
exit 0
