#!/usr/bin/env bash
# End-to-end suite: drives genesis-temporal with the official Temporal
# TypeScript SDK. Usage: bash tests/e2e/run.sh PATH/TO/genesis-temporal
#
# Runs every tests/e2e/scenarios/*.js (sorted) in its own node process,
# each against its own fresh server. Prints PASS/FAIL per scenario (on
# failure: the error chain and the server's last output), then the line
# "N passed, M failed". Exit status is 0 only if M == 0 and N > 0.
#
# Env: GT_E2E_FILTER=regex  run only scenarios whose file name matches
#      GT_E2E_TIMEOUT_MS=ms overrides each scenario's own timeout
#      GT_E2E_KEEP_LOGS=1   keep the server logs directory even on success
set -u

here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -ne 1 ]; then
  echo "usage: bash $0 PATH/TO/genesis-temporal" >&2
  exit 2
fi
binary="$(cd "$(dirname "$1")" 2>/dev/null && pwd)/$(basename "$1")"
if [ ! -x "$binary" ]; then
  echo "e2e: server binary not found or not executable: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

export NODE_PATH="$(cd "$here/../../.deps/npm/node_modules" 2>/dev/null \
  && pwd)"
if [ -z "$NODE_PATH" ] || [ ! -d "$NODE_PATH/@temporalio/client" ]; then
  echo "e2e: Temporal SDK missing under .deps/npm/node_modules" \
    "(run tools/install-deps.sh)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
export GT_BINARY="$binary"

work="$(mktemp -d "${TMPDIR:-/tmp}/gt-e2e.XXXXXX")"
export GT_E2E_LOGDIR="$work/logs"
mkdir -p "$GT_E2E_LOGDIR"

# Bundle the workflow code once (webpack, ~3 s) instead of per worker.
if node "$here/lib/bundle.js" "$work/workflows-bundle.js" \
    >"$work/bundle.out" 2>&1; then
  export GT_E2E_BUNDLE="$work/workflows-bundle.js"
else
  echo "e2e: workflow bundling failed; scenarios will bundle themselves:"
  sed 's/^/    /' "$work/bundle.out"
fi

passed=0
failed=0
# Backstop only: each scenario enforces its own, shorter timeout.
outer_timeout=180
for file in "$here"/scenarios/*.js; do
  [ -e "$file" ] || continue
  name="$(basename "$file" .js)"
  if [ -n "${GT_E2E_FILTER:-}" ] && ! [[ "$name" =~ $GT_E2E_FILTER ]]; then
    continue
  fi
  out="$work/$name.out"
  start=$(date +%s%N)
  timeout -k 5 "$outer_timeout" node "$file" >"$out" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  # A pass needs exit 0 AND the harness's own success marker.
  if [ $rc -eq 0 ] && grep -q "^E2E-OK " "$out"; then
    passed=$((passed + 1))
    echo "PASS $name (${ms} ms)"
  else
    failed=$((failed + 1))
    why="exit $rc"
    [ $rc -eq 124 ] && why="killed after ${outer_timeout} s"
    [ $rc -eq 0 ] && why="exit 0 but no E2E-OK line"
    echo "FAIL $name (${ms} ms, $why)"
    tail -n 150 "$out" | sed 's/^/    /'
  fi
done

if [ $failed -eq 0 ] && [ -z "${GT_E2E_KEEP_LOGS:-}" ]; then
  rm -rf "$work"
else
  echo "e2e: outputs and server logs kept in $work"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
