#!/usr/bin/env bash
# install-deps.sh: installs everything Genesis Temporal needs to build, test and run, on
# Debian 12. Idempotent: a second run installs nothing and returns quickly.
#   1. Debian packages (the C stack, PostgreSQL for tests, node/npm for the e2e suite).
#   2. The pinned npm packages, into .deps/npm (gitignored):
#        @temporalio/core-bridge@1.24.0  -> the Temporal .proto files the build compiles
#        @temporalio/{client,worker,workflow,activity}@1.24.0 -> the e2e tests' real client
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential pkg-config cmake git ca-certificates \
  libuv1-dev libnng-dev libmsgpack-dev libpq-dev libyaml-dev check libsqlite3-dev \
  libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev \
  zlib1g-dev libssl-dev postgresql sqlite3 nodejs npm procps"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# Debian's nodejs may be replaced by a newer one from elsewhere; accept any node >= 18.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ' || true)
fi
missing=$(echo $missing)
if [ -n "$missing" ]; then
  echo "install-deps: apt-get install $missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

NPM_DIR=.deps/npm
NPM_PKGS="@temporalio/core-bridge@1.24.0 @temporalio/client@1.24.0 @temporalio/worker@1.24.0 \
  @temporalio/workflow@1.24.0 @temporalio/activity@1.24.0 @temporalio/testing@1.24.0"
stamp="$NPM_DIR/.installed-1.24.0"
if [ ! -f "$stamp" ]; then
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"name":"gt-deps","private":true}' > "$NPM_DIR/package.json"
  echo "install-deps: npm install $NPM_PKGS"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error $NPM_PKGS)
  touch "$stamp"
fi
PROTO_DIR="$NPM_DIR/node_modules/@temporalio/core-bridge/sdk-core/crates/protos/protos/api_upstream"
if [ ! -f "$PROTO_DIR/temporal/api/workflowservice/v1/service.proto" ]; then
  echo "install-deps: Temporal protos not found under $PROTO_DIR" >&2
  exit 1
fi
echo "install-deps: ok"
