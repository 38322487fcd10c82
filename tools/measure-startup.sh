#!/usr/bin/env bash
# measure-startup.sh: time from launch until the gRPC port accepts, and the server's idle
# memory (VmRSS) 2 s later. Usage: tools/measure-startup.sh [build/genesis-temporal] [port]
set -euo pipefail
bin=${1:-build/genesis-temporal}
port=${2:-17299}
t0=$(date +%s%N)
"$bin" server start-dev --port "$port" --ip 127.0.0.1 --headless --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "server exited" >&2; exit 1; }
done
t1=$(date +%s%N)
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "launch-to-accepting: $(( (t1 - t0) / 1000 )) us; idle RSS: ${rss} kB"
kill -TERM $pid
wait $pid
