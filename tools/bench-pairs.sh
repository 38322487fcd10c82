#!/usr/bin/env bash
# bench-pairs.sh: compares two server binaries the only way this shared machine allows,
# in interleaved pairs (the same binary moves by ±15% from one minute to the next, so
# two runs taken apart compare nothing). Pairs alternate A-B and B-A (so neither always
# gets the warmer disk), each run against its own fresh server on a SQLite
# file in a temp dir (or in memory), with the same gtbench closed loop; then prints one
# line per run and the means.
#
# usage: tools/bench-pairs.sh BIN_A BIN_B [PAIRS]
#   BIN_A, BIN_B       genesis-temporal binaries (copy them out of the build directory
#                      first: rebuilding during a run would change what is measured)
#   PAIRS              number of pairs (default 5)
# Environment (all optional):
#   GTBENCH=build/tools/gtbench   the load driver
#   PAIRS_STORE=file              file (SQLite file, durable commits) or mem
#   PAIRS_ARGS="-c 100 -d 8 -w 2" gtbench arguments (workload, concurrency, windows)
#   PAIRS_SERVER_ARGS_A=""        extra server arguments for A (e.g.
#   PAIRS_SERVER_ARGS_B=""          "--dynamic-config-value K=V"), and for B
#   PAIRS_GTBENCH_ARGS_A=""       extra gtbench arguments for A (e.g. "--conns 8"), and
#   PAIRS_GTBENCH_ARGS_B=""         for B: BIN_A and BIN_B may then be the same binary
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
A=$1
B=$2
PAIRS=${3:-5}
GTBENCH=${GTBENCH:-$ROOT/build/tools/gtbench}
STORE=${PAIRS_STORE:-file}
ARGS=${PAIRS_ARGS:--c 100 -d 8 -w 2}
for f in "$A" "$B" "$GTBENCH"; do
  [ -x "$f" ] || { echo "bench-pairs: $f is not an executable" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/bench-pairs.XXXXXX)
SERVER_PID=""
# shellcheck source=tools/lib/server.sh
. "$ROOT/tools/lib/server.sh"
cleanup() {
  [ -z "$SERVER_PID" ] || stop_pid "$SERVER_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_one LABEL BIN EXTRA_SERVER_ARGS EXTRA_GTBENCH_ARGS: runs gtbench against a fresh
# server; prints "LABEL wf/s p50 p95 p99 cpu" (or LABEL failed) from gtbench's
# machine-readable line.
run_one() {
  local label=$1 bin=$2 extra=$3 gextra=$4 db="" port line
  rm -f "$TMP"/b.db*
  [ "$STORE" = file ] && db="--db-filename $TMP/b.db"
  port=$(free_port) || { echo "$label failed"; return; }
  # shellcheck disable=SC2086 # extra and db are word lists
  "$bin" server start-dev --ip 127.0.0.1 --port "$port" --http-port 0 --headless \
    --log-level warn $db $extra > "$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  if wait_listening "$SERVER_PID" "$port"; then
    # shellcheck disable=SC2086 # ARGS and gextra are word lists
    line=$("$GTBENCH" --addr 127.0.0.1:"$port" --server-pid "$SERVER_PID" -q $ARGS $gextra \
      2>/dev/null | tail -1)
  else
    line=""
    tail -n 3 "$TMP/server.log" >&2
  fi
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  field() { sed -n "s|.* $1=\([^ ]*\).*|\1|p" <<<"$line"; }
  if [ "$(field status)" != ok ]; then
    echo "$label failed"
    return
  fi
  echo "$label $(field wf/s) $(field p50_ms) $(field p95_ms) $(field p99_ms)" \
    "$(field server_cpu_ms_per_wf)"
}

# run_side A|B: one run of that side, with its binary and arguments.
run_side() {
  if [ "$1" = A ]; then
    run_one A "$A" "${PAIRS_SERVER_ARGS_A:-}" "${PAIRS_GTBENCH_ARGS_A:-}"
  else
    run_one B "$B" "${PAIRS_SERVER_ARGS_B:-}" "${PAIRS_GTBENCH_ARGS_B:-}"
  fi
}

echo "bench-pairs: A=$A ${PAIRS_SERVER_ARGS_A:-} ${PAIRS_GTBENCH_ARGS_A:-}," \
  "B=$B ${PAIRS_SERVER_ARGS_B:-} ${PAIRS_GTBENCH_ARGS_B:-}; $PAIRS pairs, store $STORE," \
  "gtbench $ARGS"
echo "run wf/s p50_ms p95_ms p99_ms server_cpu_ms_per_wf"
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then first=A second=B; else first=B second=A; fi
  run_side "$first"
  run_side "$second"
done | tee "$TMP/runs"
awk '$2 != "failed" { n[$1]++; w[$1] += $2; p50[$1] += $3; p99[$1] += $5; c[$1] += $6 }
     $2 == "failed" { f[$1]++ }
     END {
       split("A B", ks, " ")
       for (j = 1; j <= 2; j++) {
         k = ks[j]
         if (n[k])
           printf "mean %s: %.1f wf/s, p50 %.2f ms, p99 %.2f ms, server CPU %.3f ms/wf (%d runs, %d failed)\n",
                  k, w[k] / n[k], p50[k] / n[k], p99[k] / n[k], c[k] / n[k], n[k], f[k] + 0
       }
       if (n["A"] && n["B"])
         printf "B vs A: %+.1f%% wf/s, p99 %+.2f ms\n",
                100 * (w["B"] / n["B"] - w["A"] / n["A"]) / (w["A"] / n["A"]),
                p99["B"] / n["B"] - p99["A"] / n["A"]
     }' "$TMP/runs"
