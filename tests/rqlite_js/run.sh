#!/usr/bin/env bash
# rqlite's own JavaScript client (rqlite-js, from the npm registry) against
# a raftsql node's HTTP API: execute, parameters, transactions, query
# levels, errors in place, status, backup and load. Not a CI test (it
# needs the npm registry); run by hand after a change to the HTTP API:
#
#   ./bazelw build //server:raftsql_server && tests/rqlite_js/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/rqlite-js-XXXXXX)"
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null &&
  npm install --silent rqlite-js@2.5.7 @babel/runtime >/dev/null)
cp "$here/check.mjs" "$work/"
port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc="127.0.0.1:$(port)" http="127.0.0.1:$(port)"
"$repo/bazel-bin/server/raftsql_server" --id=1 --listen="$grpc" \
  --peers="1=$grpc" --http_listen="$http" --data_dir="$work/data" \
  --insecure >"$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://$http/readyz" >/dev/null && break
  sleep 0.1
done
(cd "$work" && node check.mjs "http://$http")
