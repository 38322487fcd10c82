#!/usr/bin/env bash
# Crash suite: kill -9 under load, fencing, bad stores, schema versions,
# driven by the official Temporal TypeScript SDK (tests/e2e/lib helpers).
# Usage: bash tests/crash/run.sh PATH/TO/genesis-temporal
#
# Runs every tests/crash/scenarios/*.js (sorted) in its own node process;
# each starts and kills its own servers (and its own throwaway PostgreSQL
# through tools/pg-test-server.sh when it needs one). Prints PASS/FAIL per
# scenario (on failure: its output tail), then "N passed, M failed". Exit
# status 0 only if M == 0 and N > 0.
#
# Env: GT_CRASH_FILTER=regex  run only the scenarios whose name matches
#      GT_CRASH_SEED=n        replay the random plan of the kill -9 loads
#      GT_CRASH_KEEP_LOGS=1   keep outputs and server logs even on success
#      GT_CRASH_LOG_LEVEL=l   server log level (default warn)
set -u

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ $# -ne 1 ]; then
  echo "usage: bash $0 PATH/TO/genesis-temporal" >&2
  exit 2
fi
binary="$(cd "$(dirname "$1")" 2>/dev/null && pwd)/$(basename "$1")"
if [ ! -x "$binary" ]; then
  echo "crash: server binary not found or not executable: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
export NODE_PATH="$(cd "$root/.deps/npm/node_modules" 2>/dev/null && pwd)"
if [ -z "$NODE_PATH" ] || [ ! -d "$NODE_PATH/@temporalio/client" ]; then
  echo "crash: Temporal SDK missing under .deps/npm/node_modules" \
    "(run tools/install-deps.sh)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
export GT_BINARY="$binary"

work="$(mktemp -d "${TMPDIR:-/tmp}/gt-crash.XXXXXX")"
export GT_E2E_LOGDIR="$work/logs"
mkdir -p "$GT_E2E_LOGDIR"
if node "$root/tests/e2e/lib/bundle.js" "$work/workflows-bundle.js" \
    >"$work/bundle.out" 2>&1; then
  export GT_E2E_BUNDLE="$work/workflows-bundle.js"
else
  echo "crash: workflow bundling failed; scenarios will bundle themselves:"
  sed 's/^/    /' "$work/bundle.out"
fi

passed=0
failed=0
t0=$(date +%s)
outer_timeout=200 # backstop: each scenario enforces its own timeout
for file in "$here"/scenarios/*.js; do
  [ -e "$file" ] || continue
  name="$(basename "$file" .js)"
  if [ -n "${GT_CRASH_FILTER:-}" ] && ! [[ "$name" =~ $GT_CRASH_FILTER ]]; then
    continue
  fi
  out="$work/$name.out"
  start=$(date +%s%N)
  timeout -k 5 "$outer_timeout" node "$file" >"$out" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ $rc -eq 0 ] && grep -q "^E2E-OK " "$out"; then
    passed=$((passed + 1))
    echo "PASS $name (${ms} ms)"
    # Findings that do not fail the scenario (see the scenario's comment).
    grep '^NOTE ' "$out" | sort -u | sed 's/^/    /'
  else
    failed=$((failed + 1))
    why="exit $rc"
    [ $rc -eq 124 ] && why="killed after ${outer_timeout} s"
    echo "FAIL $name (${ms} ms, $why)"
    # The SDK's own retry warnings drown the report; they stay in $out.
    grep -v 'temporalio_client::retry' "$out" | tail -n 150 | sed 's/^/    /'
  fi
done

if [ $failed -eq 0 ] && [ -z "${GT_CRASH_KEEP_LOGS:-}" ]; then
  rm -rf "$work"
else
  echo "crash: outputs and server logs kept in $work"
fi
echo "crash: $(( $(date +%s) - t0 )) s"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
