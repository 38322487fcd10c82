#!/usr/bin/env bash
# measure-startup.sh: time from launch until the gRPC port accepts, the server's own
# figure (its SRV-READY log line: from main() to serving, without exec and dynamic
# linking), and its idle memory (VmRSS) 2 s later.
# Usage: tools/measure-startup.sh [build/genesis-temporal] [port]
# The clock and the port probe are bash built-ins ($EPOCHREALTIME, a redirection on
# `true`), so the loop forks nothing: on a machine where a fork+exec takes milliseconds,
# a forking probe would measure itself.
set -euo pipefail
bin=${1:-build/genesis-temporal}
port=${2:-17299}
log=$(mktemp /tmp/measure-startup.XXXXXX)
usec() { local t=${1/[.,]/}; echo $((10#$t)); }
t0=$EPOCHREALTIME
"$bin" server start-dev --port "$port" --ip 127.0.0.1 --headless --log-level info >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
until { true 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "server exited" >&2; cat "$log" >&2; exit 1; }
done
t1=$EPOCHREALTIME
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
own=$(sed -n 's/.*SRV-READY.* in \([0-9]*\) ms.*/\1/p' "$log")
echo "launch-to-accepting: $(( $(usec "$t1") - $(usec "$t0") )) us; server's own: ${own:-?} ms; idle RSS: ${rss} kB"
kill -TERM $pid
wait $pid
