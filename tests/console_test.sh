#!/usr/bin/env bash
# The web console in a real browser (headless Chromium): a node with a
# device that uploaded readings, a rule whose command waits for an
# operator; the browser shows every page, runs a query and approves the
# command, which then reaches the device's queue. Screenshots of each page
# are written to the test's outputs (bazel-testlogs/.../test.outputs).
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
dir="$(mktemp -d "${TEST_TMPDIR:-/tmp}/console-XXXXXX")"
out="${TEST_UNDECLARED_OUTPUTS_DIR:-$dir}"
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc="127.0.0.1:$(free_port)" http="127.0.0.1:$(free_port)"
"$root/server/raftsql_server" --id=1 --listen="$grpc" --peers="1=$grpc" \
  --http_listen="$http" --data_dir="$dir/data" --insecure \
  --decision_interval_ms=50 >"$dir/node.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; pkill -9 -f "$dir" || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://$http/readyz" >/dev/null && break
  sleep 0.1
done
shell() { "$root/tools/shell" --insecure --nodes="$grpc" "$@"; }
curl -sf -XPOST "http://$http/db/execute" -d "[\"CREATE TABLE fruit (name TEXT)\",
  \"INSERT INTO fruit VALUES ('apple'), ('apple'), ('pear')\"]" |
  grep -q '"rows_affected":3'

# A device uploads 40 readings (1..40).
shell -c ".device add pump-1 pump-1-token" >/dev/null
seq 1 40 | sed 's/^/temp,/' >"$dir/pump-1.csv"
echo pump-1-token >"$dir/token"
timeout 60 "$root/edge/agent" --hubs="$grpc" --device=pump-1 \
  --token_file="$dir/token" --store="$dir/pump-1.db" \
  --source=csv:"$dir/pump-1.csv" --exit_when_drained --stats_every_s=0 \
  --batch_ms=10 >"$dir/agent.log" 2>&1
# A rule whose command needs an operator's approval.
shell -c ".allow cool pump-* approval" | grep -qx ok
shell -c '.rule add hot edge_readings cool {"peak":"$peak"} SELECT device, max(value) AS peak FROM edge_readings_by_device GROUP BY device HAVING max(value) > 10' |
  grep -qx ok
for _ in $(seq 1 100); do
  shell -c ".approvals" | grep -q pending && break
  sleep 0.1
done
shell -c ".approvals" | grep -q pending

/usr/bin/python3 "$root/tests/console_browser.py" "http://$http" "$out"

# The approved command is in the device's queue.
shell -c "SELECT device, name FROM edge_commands WHERE name = 'cool'" |
  grep -Eq "pump-1 +cool"
kill -TERM "$pid"
wait "$pid"
echo PASS
