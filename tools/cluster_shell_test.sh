#!/usr/bin/env bash
# The cluster tool starts 3 nodes and stops them all on SIGINT; the shell
# runs SQL and dot-commands against them, one-shot and interactively (from a
# pipe), and fails with a clear error on bad SQL.
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
cluster="$root/tools/cluster"
shell="$root/tools/shell"
dir="$(mktemp -d "${TEST_TMPDIR:-/tmp}/cluster-XXXXXX")"
out="$dir/cluster.out"

# Every node finds the hub's models here (the same file for all).
mkdir -p "$dir/models"
cp "$root/ai/model/hub-actions.gguf" "$dir/models/"
"$cluster" --nodes=3 --dir="$dir" --server="$root/server/raftsql_server" \
  -- --model_dir="$dir/models" >"$out" 2>&1 &
cluster_pid=$!
trap 'kill -9 $cluster_pid 2>/dev/null || true; pkill -9 -f "$dir" || true' EXIT

for _ in $(seq 1 150); do
  grep -q "Ctrl-C stops" "$out" && break
  sleep 0.1
done
grep -q "Ctrl-C stops" "$out" || { cat "$out"; echo "cluster did not start"; exit 1; }
nodes="$(sed -n 's/^shell:.*--nodes=\(.*\)$/\1/p' "$out")"
certs="$(sed -n 's/^shell:.*--certs_dir=\([^ ]*\) .*$/\1/p' "$out")"
[ -f "$certs/ca.crt" ] || { cat "$out"; echo "no certificates"; exit 1; }
# The cluster is TLS-only: a plaintext shell cannot talk to it.
if "$shell" --nodes="$nodes" --insecure -c "SELECT 1" >"$dir/plain.txt" 2>&1; then
  echo "a plaintext shell reached a TLS cluster"; exit 1
fi
shell() { "$shell" --certs_dir="$certs" "$@"; }
pids="$(sed -n 's/.*pid \([0-9]*\).*/\1/p' "$out")"
[ "$(echo "$pids" | wc -l)" -eq 3 ]

shell --nodes="$nodes" -c "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO t (name) VALUES ('alpha'), ('beta');" | tee "$dir/a.txt"
grep -q "2 rows affected" "$dir/a.txt"
shell --nodes="$nodes" -c "SELECT id, name FROM t ORDER BY id" | tee "$dir/b.txt"
grep -q "^2   beta" "$dir/b.txt"
grep -q "(2 rows)" "$dir/b.txt"
shell --nodes="$nodes" -c ".nodes" | tee "$dir/c.txt"
[ "$(grep -c "Leader" "$dir/c.txt")" -eq 1 ]
# The committed changes of t from the start: its CREATE and two inserts.
timeout 30 "$shell" --certs_dir="$certs" --nodes="$nodes" -c ".watch t 1 3" |
  tee "$dir/w.txt"
grep -q "SCHEMA  t  0" "$dir/w.txt"
grep -q "INSERT  t  2  2|beta" "$dir/w.txt"
if shell --nodes="$nodes" -c "SELEC oops" >"$dir/d.txt"; then
  echo "bad SQL did not fail"; exit 1
fi
grep -q "ERROR: INVALID_ARGUMENT" "$dir/d.txt"
# Interactive mode from a pipe: a statement over two lines, dot-commands.
printf '.consistency none\n.timer on\nSELECT count(*)\n  FROM t;\n.version t\n.quit\n' |
  shell --nodes="$nodes" | tee "$dir/e.txt"
grep -q "consistency: none" "$dir/e.txt"
grep -q "Run Time:" "$dir/e.txt"
grep -qx "2" "$dir/e.txt"

# Users: root adds a query-only user with a password; with it (the CA, no
# certificate) reads work and writes are refused.
shell --nodes="$nodes" -c ".user add alice query s3cret-pass" | tee "$dir/f.txt"
grep -q "alice  query  (password)" "$dir/f.txt"
RAFTSQL_PASSWORD=s3cret-pass "$shell" --certs_dir="$certs" --user=alice \
  --nodes="$nodes" -c "SELECT count(*) FROM t" | tee "$dir/g.txt"
grep -qx "2" "$dir/g.txt"
if RAFTSQL_PASSWORD=s3cret-pass "$shell" --certs_dir="$certs" --user=alice \
  --nodes="$nodes" -c "INSERT INTO t (name) VALUES ('x')" >"$dir/h.txt"; then
  echo "a query-only user wrote"; exit 1
fi
grep -q "ERROR: PERMISSION_DENIED" "$dir/h.txt"
if RAFTSQL_PASSWORD=wrong-pass "$shell" --certs_dir="$certs" --user=alice \
  --nodes="$nodes" -c "SELECT 1" >"$dir/i.txt"; then
  echo "a wrong password was accepted"; exit 1
fi
grep -q "ERROR: UNAUTHENTICATED" "$dir/i.txt"

# An edge device: root registers it; the agent uploads a CSV over TLS with
# its token; an operator queues a command and sets a desired state.
shell --nodes="$nodes" -c ".device add pump-1 pump-1-token" | tee "$dir/j.txt"
grep -q "pump-1  device  (password)" "$dir/j.txt"
# agent DEVICE READINGS [credential flags]: uploads temp,1..READINGS over
# TLS and exits once the hub holds them all.
agent() {
  local device="$1" n="$2"
  shift 2
  seq 1 "$n" | sed 's/^/temp,/' >"$dir/$device.csv"
  timeout 60 "$root/edge/agent" --hubs="$nodes" --device="$device" \
    --ca_file="$certs/ca.crt" --store="$dir/$device.db" \
    --source=csv:"$dir/$device.csv" --exit_when_drained --stats_every_s=0 \
    --batch_ms=10 "$@" 2>&1 | tee "$dir/$device.agent.txt"
}
echo pump-1-token >"$dir/token"
agent pump-1 250 --token_file="$dir/token"
shell --nodes="$nodes" \
  -c "SELECT count(*) || '/' || sum(value) FROM edge_readings" |
  tee "$dir/k.txt"
grep -qx "250/31375.0" "$dir/k.txt"
shell --nodes="$nodes" -c ".devices" | tee "$dir/l.txt"
# Acked 250, nothing waiting, nothing dropped (connected 0 once the
# session's goodbye has applied).
grep -Eq "^pump-1 +[01] +[0-9] .* 250 +0 +0 " "$dir/l.txt"
# A device that proves itself by a client certificate (no token).
"$root/tools/raftsql_certs" client --dir="$certs" --user=pump-2
shell --nodes="$nodes" -c ".user add pump-2 device" | tee "$dir/p.txt"
grep -q "pump-2  device  (certificate)" "$dir/p.txt"
agent pump-2 40 --cert_file="$certs/client-pump-2.crt" \
  --key_file="$certs/client-pump-2.key"
shell --nodes="$nodes" \
  -c "SELECT count(*) FROM edge_readings_by_device WHERE device = 'pump-2'" |
  tee "$dir/q.txt"
grep -qx "40" "$dir/q.txt"

# A rule over the readings: pump-1 peaked at 250, pump-2 at 40. The
# leader's DecisionMaker issues one command, to pump-1, and audits it.
shell --nodes="$nodes" -c ".allow cool pump-*" | tee "$dir/r1.txt"
grep -qx "ok" "$dir/r1.txt"
shell --nodes="$nodes" -c '.rule add hot edge_readings cool {"peak":"$peak"} SELECT device, max(value) AS peak FROM edge_readings_by_device GROUP BY device HAVING max(value) > 100' |
  tee "$dir/r2.txt"
grep -qx "ok" "$dir/r2.txt"
for _ in $(seq 1 100); do
  shell --nodes="$nodes" -c ".audit" >"$dir/r3.txt"
  grep -q "issued" "$dir/r3.txt" && break
  sleep 0.1
done
cat "$dir/r3.txt"
grep -Eq "hot +pump-1 +issued" "$dir/r3.txt"
shell --nodes="$nodes" -c "SELECT device, name, params FROM edge_commands WHERE name = 'cool'" |
  tee "$dir/r4.txt"
grep -Eq 'pump-1 +cool +\{"peak":250' "$dir/r4.txt"
[ "$(grep -c cool "$dir/r4.txt")" -eq 1 ]
shell --nodes="$nodes" -c '.command pump-1 set {"speed":5}' | tee "$dir/m.txt"
grep -q "queued" "$dir/m.txt"
shell --nodes="$nodes" -c ".commands pump-1" | tee "$dir/n.txt"
grep -q "queued" "$dir/n.txt"
shell --nodes="$nodes" -c '.desired pump-1 {"sample_ms": 500}' | tee "$dir/o.txt"
grep -q "version 1" "$dir/o.txt"

# Models: named by a file's SHA-256, activated once staged.
shell --nodes="$nodes" -c ".model activate m1" >"$dir/v1.txt" 2>&1 || true
grep -q "no model m1 is staged" "$dir/v1.txt"
printf 'model bytes' >"$dir/m1.gguf"
shell --nodes="$nodes" -c ".model stage m1 $dir/m1.gguf" | tee "$dir/v2.txt"
grep -qx "ok" "$dir/v2.txt"
shell --nodes="$nodes" -c ".model activate m1" | tee "$dir/v3.txt"
grep -qx "ok" "$dir/v3.txt"
shell --nodes="$nodes" -c ".models" | tee "$dir/v4.txt"
sha=$(sha256sum "$dir/m1.gguf" | cut -d' ' -f1)
grep -Eq "m1 +active +$sha" "$dir/v4.txt"

# The shipped model decides over the readings: each device and sensor's
# situation is scored (cool is allowed for pump-*), and the audit names
# the model by its hash.
shell --nodes="$nodes" -c ".model stage hub-actions $root/ai/model/hub-actions.gguf" |
  tee "$dir/w1.txt"
grep -qx "ok" "$dir/w1.txt"
shell --nodes="$nodes" -c ".model activate hub-actions" | tee "$dir/w2.txt"
grep -qx "ok" "$dir/w2.txt"
shell --nodes="$nodes" -c '.rule add advisor edge_readings @model {} SELECT device, sensor, value, ewma(value, 0.2) AS mean, zscore(value) AS z, rate(value, hub_time_ms) * 60000 AS rate, stuck(value, 0.001) AS stuck, max_gap(hub_time_ms) / 1000 AS gap, max(hub_time_ms) FROM (SELECT * FROM edge_readings_by_device ORDER BY hub_time_ms) GROUP BY device, sensor' |
  tee "$dir/w3.txt"
grep -qx "ok" "$dir/w3.txt"
msha=$(sha256sum "$root/ai/model/hub-actions.gguf" | cut -c1-12)
for _ in $(seq 1 100); do
  shell --nodes="$nodes" -c "SELECT device, verdict, command, json_extract(inputs, '\$.why') AS why FROM ai_audit WHERE rule = 'advisor' AND json_extract(inputs, '\$.model') = 'hub-actions@$msha'" >"$dir/w4.txt"
  grep -q "(2 rows)" "$dir/w4.txt" && break
  sleep 0.1
done
cat "$dir/w4.txt"
grep -q "(2 rows)" "$dir/w4.txt"
shell --nodes="$nodes" -c ".nodes" | tee "$dir/w5.txt"
grep -q "decides with model hub-actions@$msha" "$dir/w5.txt"

kill -INT "$cluster_pid"
for _ in $(seq 1 200); do
  kill -0 "$cluster_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$cluster_pid" 2>/dev/null; then echo "cluster did not stop"; exit 1; fi
for p in $pids; do
  if kill -0 "$p" 2>/dev/null; then echo "node $p still running"; exit 1; fi
done
grep -q "stopped" "$out"
echo PASSED
