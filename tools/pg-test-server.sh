#!/usr/bin/env bash
# pg-test-server.sh: a throwaway PostgreSQL 15 for tests (trust auth, 127.0.0.1 only).
#
#   pg-test-server.sh start DIR   initdb into DIR (created if absent), start on a free
#                                 port, print the libpq conninfo on stdout
#   pg-test-server.sh pause DIR   pg_ctl stop -m fast (the data stays; for restart tests)
#   pg-test-server.sh resume DIR  start it again on the same port, wait until ready
#   pg-test-server.sh stop DIR    stop it (if running) and remove DIR
#
# PostgreSQL refuses to run as root: when root, every server command runs as the
# `postgres` user (runuser), and DIR is chowned to it. Logs go to DIR/log.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|pause|resume|stop DIR" >&2; exit 2; }

as_pg() { # runs "$@" as the postgres user when we are root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the server on port $1; returns non-zero if it did not come up (port taken).
start_on() {
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-p $1 -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 30000))
    # a port somebody listens on already is skipped without trying
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    if start_on "$port"; then
      echo "$port" >"$dir/port"
      echo "host=127.0.0.1 port=$port user=postgres dbname=postgres"
      exit 0
    fi
  done
  echo "pg-test-server: could not start PostgreSQL (see $dir/log)" >&2
  exit 1
  ;;
pause)
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
resume)
  start_on "$(cat "$dir/port")"
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|pause|resume|stop DIR" >&2
  exit 2
  ;;
esac
