#!/usr/bin/env bash
# schema-postgresql.sh: installs and checks the Genesis Temporal PostgreSQL schema.
#
#   schema-postgresql.sh setup   [--config FILE]  create the database when missing, apply
#                                                 persistence/schema/postgres/v2.sql (it
#                                                 records schema_version 2 in cluster_metadata);
#                                                 an existing older schema is upgraded
#   schema-postgresql.sh upgrade [--config FILE]  bring the schema to this build's version:
#                                                 from 1, upgrade-v1-to-v2.sql in one
#                                                 transaction; at 2, "already at version 2"
#   schema-postgresql.sh version [--config FILE]  print the installed schema version (then
#                                                 "visibility DB: N" for a separate one)
#
# FILE defaults to config/production.yaml. The database is the one of
# persistence.defaultStore (sql.databaseName, connectAddr, user, password). When
# persistence.visibilityStore names another PostgreSQL database (config/production.yaml:
# temporal_visibility), the command then runs on it too: it gets the same schema, of which
# the server uses the visibility table there (visibility records reach it through the
# visibility_tasks outbox of the default database). The server runs the same v2.sql itself at first open
# and refuses to start on any other version (STORE-PG-SCHEMA-VERSION), so running this
# script first is optional but lets a DBA own the DDL. Needs psql (postgresql-client); the
# user must be allowed to CREATE DATABASE when the database does not exist yet.
# Exit status: 0 ok, 1 error (one "schema-postgresql: ..." line on stderr), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCHEMA="$ROOT/persistence/schema/postgres/v2.sql"
UPGRADE_FROM_1="$ROOT/persistence/schema/postgres/upgrade-v1-to-v2.sql"
VERSION=2

die() { echo "schema-postgresql: $*" >&2; exit 1; }
usage() { echo "usage: $0 setup|upgrade|version [--config FILE]" >&2; exit 2; }

cmd=${1:-}
shift || true
config="$ROOT/config/production.yaml"
while [ $# -gt 0 ]; do
  case "$1" in
  --config) [ $# -ge 2 ] || usage; config=$2; shift 2 ;;
  --config=*) config=${1#--config=}; shift ;;
  *) usage ;;
  esac
done
case "$cmd" in setup|upgrade|version) ;; *) usage ;; esac
[ -r "$config" ] || die "cannot read config $config"
command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"

# Prints KEY=VALUE lines for the sql block of the datastore persistence.$1 names
# (defaultStore or visibilityStore); NONE=1 when the config has no such key. The config
# files are plain block YAML (config/*.yaml): indentation and "key: value", quotes optional.
read_store() {
  awk -v key="$1" '
    function val(s) { sub(/^[^:]*:[ \t]*/, "", s); sub(/[ \t]+#.*$/, "", s);
                      gsub(/^"|"$/, "", s); gsub(/^\x27|\x27$/, "", s); return s }
    function ind(s) { match(s, /^ */); return RLENGTH }
    /^[ \t]*(#|$)/ { next }
    /^persistence:/ { inp = 1; next }
    /^[^ ]/ { inp = 0 }
    inp && $0 ~ ("^  " key ":") { def = val($0) }
    inp && /^  datastores:/ { inds = 1; next }
    inp && inds && ind($0) == 2 { inds = 0 }
    inp && inds && ind($0) == 4 { name = $0; sub(/^ +/, "", name); sub(/:.*/, "", name) }
    inp && inds && ind($0) == 8 && $0 ~ /^ +(pluginName|databaseName|connectAddr|user|password):/ {
      k = $0; sub(/^ +/, "", k); sub(/:.*/, "", k); v[name, k] = val($0) }
    END {
      if (def == "") { print (key == "defaultStore" ? "ERR=no persistence.defaultStore" : "NONE=1"); exit }
      if (v[def, "pluginName"] == "") { print "ERR=no datastore " def " with sql.pluginName"; exit }
      printf "PLUGIN=%s\nDB=%s\nADDR=%s\nUSER=%s\nPASS=%s\nSTORE=%s\n", v[def, "pluginName"],
        v[def, "databaseName"], v[def, "connectAddr"], v[def, "user"], v[def, "password"], def
    }' "$2"
}

# Sets S, PG* and db/where for the datastore persistence.$1 names; returns 1 when there is
# none (visibilityStore only).
use_store() {
S=()
while IFS='=' read -r k rest; do S[$k]=$rest; done < <(read_store "$1" "$config")
[ -z "${S[NONE]:-}" ] || return 1
[ -z "${S[ERR]:-}" ] || die "$config: ${S[ERR]}"
if [ "${S[PLUGIN]}" != postgres ]; then
  [ "$1" = defaultStore ] || return 1 # a SQLite visibility file: the server creates it
  die "$config: defaultStore ${S[STORE]} has pluginName '${S[PLUGIN]}', not postgres"
fi
[ -n "${S[DB]}" ] || die "$config: datastore ${S[STORE]} has no databaseName"
addr=${S[ADDR]:-127.0.0.1:5432}
export PGHOST=${addr%:*} PGPORT=${addr##*:} PGUSER=${S[USER]:-postgres}
[ "$PGPORT" != "$addr" ] || PGPORT=5432
unset PGPASSWORD
[ -z "${S[PASS]}" ] || export PGPASSWORD=${S[PASS]}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5}
db=${S[DB]}
where="$PGUSER@$PGHOST:$PGPORT/$db"
}

q() { # q DB SQL: one value, errors on stderr
  psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}
# The installed version: a number, "none" (no cluster_metadata), or "nodb".
installed() {
  local out
  if ! out=$(q "$db" "SELECT to_regclass('cluster_metadata') IS NOT NULL" 2>&1); then
    case "$out" in
    *"does not exist"*) echo nodb; return 0 ;;
    *) die "cannot connect to $where: $(head -n 1 <<<"$out")" ;;
    esac
  fi
  if [ "$out" != t ]; then echo none; return 0; fi
  out=$(q "$db" "SELECT schema_version FROM cluster_metadata WHERE id = 1" 2>&1) ||
    die "$where: cannot read cluster_metadata: $(head -n 1 <<<"$out")"
  [ -n "$out" ] || die "$where: cluster_metadata has no version row (not a Genesis Temporal database?)"
  echo "$out"
}

check_current() { # $1 = installed version (a number)
  [ "$1" = "$VERSION" ] || die "$where has schema version $1, this build's is $VERSION" \
    "(no migration from $1 exists)"
}

# Brings an installed version ($1) to VERSION, one transaction per step; prints what it did.
bring_current() {
  local v=$1 out
  if [ "$v" = 1 ]; then
    out=$(psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$db" -f "$UPGRADE_FROM_1" 2>&1) ||
      die "$where: upgrading from version 1 failed (left at 1): $(grep -m 1 ERROR <<<"$out" || head -n 1 <<<"$out")"
    echo "$where: upgraded from version 1 to version $VERSION"
    return 0
  fi
  check_current "$v"
  echo "$where: already at version $VERSION"
}

# Runs the command on the database in use ($1: how `version` labels it; "" for none).
run_cmd() {
local label=$1
v=$(installed)
v=$(installed)
case "$cmd" in
version)
  case "$v" in
  nodb) die "database $db does not exist on $PGHOST:$PGPORT (run setup)" ;;
  none) die "$where has no Genesis Temporal schema (run setup)" ;;
  *) echo "$label$v" ;;
  esac
  ;;
upgrade)
  case "$v" in
  nodb|none) die "$where has no schema to upgrade (run setup)" ;;
  *) bring_current "$v" ;;
  esac
  ;;
setup)
  if [ "$v" = nodb ]; then
    out=$(q postgres "CREATE DATABASE \"$db\"" 2>&1) ||
      die "cannot create database $db on $PGHOST:$PGPORT: $(head -n 1 <<<"$out")"
    echo "$where: database created"
    v=none
  fi
  if [ "$v" = none ]; then
    # One transaction: a failure leaves no half schema behind.
    out=$(psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$db" -f "$SCHEMA" 2>&1) ||
      die "$where: applying $SCHEMA failed: $(grep -m 1 ERROR <<<"$out" || head -n 1 <<<"$out")"
    echo "$where: schema version $VERSION installed"
  else
    bring_current "$v"
  fi
  ;;
esac
}

declare -A S=()
use_store defaultStore
run_cmd ""
# A visibility store in another database holds the same schema (the server uses its
# visibility table); the same database, or a visibilityStore that is not PostgreSQL, is
# left alone.
def_key="$PGHOST:$PGPORT/$db"
if use_store visibilityStore && [ "$PGHOST:$PGPORT/$db" != "$def_key" ]; then
  run_cmd "visibility $db: "
fi
