# tools/lib/server.sh: shell helpers shared by the scripts that start their own
# genesis-temporal (bench.sh, bench-pairs.sh, measure-sleepers.sh). Source it; it defines
# functions only.

# free_port: prints a loopback port nobody listens on (the server binds it a moment later).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    echo "$p"
    return 0
  done
  return 1
}

# wait_listening PID PORT: waits (15 s at most) until 127.0.0.1:PORT accepts.
# Returns 0 once it does, 1 if process PID exited first, 2 on timeout.
wait_listening() {
  for _ in $(seq 1 150); do
    kill -0 "$1" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 2
}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 30 s; reaps it.
stop_pid() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$1" 2>/dev/null; then
    echo "server $1 ignored SIGTERM for 30 s; killing it" >&2
    kill -KILL "$1" 2>/dev/null
  fi
  wait "$1" 2>/dev/null
}
