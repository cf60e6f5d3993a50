#!/usr/bin/env bash
# rqlite's HTTP API with curl, as rqlite's docs use it, against a 3-node
# TLS cluster from the cluster tool: writes and reads at every node (a
# follower forwards writes through Raft), the unified endpoint, /nodes,
# /status, /readyz, credentials and their errors.
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
cluster="$root/tools/cluster"
dir="$(mktemp -d "${TEST_TMPDIR:-/tmp}/cluster-http-XXXXXX")"
out="$dir/cluster.out"

"$cluster" --nodes=3 --dir="$dir" --server="$root/server/raftsql_server" \
  -- --log_format=json >"$out" 2>&1 &
cluster_pid=$!
trap 'kill -9 $cluster_pid 2>/dev/null || true; pkill -9 -f "$dir" || true' EXIT
for _ in $(seq 1 150); do
  grep -q "Ctrl-C stops" "$out" && break
  sleep 0.1
done
grep -q "Ctrl-C stops" "$out" || { cat "$out"; echo "cluster did not start"; exit 1; }
cat "$out"
mapfile -t https < <(sed -n 's/^  node [0-9]  [^ ]*  https:\/\/\([^ ]*\) .*$/\1/p' "$out")
[ "${#https[@]}" -eq 3 ] || { echo "want 3 HTTP endpoints"; exit 1; }
certs="$dir/certs"
root_curl() {
  curl -sS --cacert "$certs/ca.crt" --cert "$certs/client-root.crt" \
    --key "$certs/client-root.key" "$@"
}
# The node whose /status says it leads, and a follower.
leader="" follower=""
for _ in $(seq 1 100); do
  for h in "${https[@]}"; do
    if root_curl "https://$h/status" | grep -q '"state":"Leader"'; then
      leader="$h"
    else
      follower="$h"
    fi
  done
  [ -n "$leader" ] && [ -n "$follower" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader"; exit 1; }

# Writes to a follower are forwarded through Raft.
root_curl -XPOST "https://$follower/db/execute?pretty&timings" \
  -H "Content-Type: application/json" -d '[
    "CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER)"
  ]' | tee "$dir/a.json"
grep -q '"time"' "$dir/a.json"
root_curl -XPOST "https://$follower/db/execute" -H "Content-Type: application/json" -d '[
    ["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20],
    ["INSERT INTO foo(name, age) VALUES(:name, :age)", {"name": "declan", "age": 25}]
  ]' | tee "$dir/b.json"
grep -q '"last_insert_id":2,"rows_affected":1' "$dir/b.json"
root_curl -XPOST "https://$leader/db/execute" -H "Content-Type: text/plain" \
  -d "INSERT INTO foo(name, age) VALUES('sinead', 30)" | tee "$dir/c.json"
grep -q '"last_insert_id":3' "$dir/c.json"

# Reads at every node, at each level; the linearizable ones (and weak:
# local on the leader, ReadIndex elsewhere) see every write.
for h in "${https[@]}"; do
  for level in linearizable weak; do
    root_curl -G "https://$h/db/query?level=$level" \
      --data-urlencode 'q=SELECT count(*) FROM foo' | tee "$dir/d.json"
    grep -q '"values":\[\[3\]\]' "$dir/d.json"
  done
  root_curl -G "https://$h/db/query?level=strong&associative" \
    --data-urlencode 'q=SELECT name FROM foo WHERE age > 21 ORDER BY id' |
    tee "$dir/e.json"
  grep -q '"rows":\[{"name":"declan"},{"name":"sinead"}\]' "$dir/e.json"
done
root_curl -XPOST "https://$follower/db/query?level=none" \
  -H "Content-Type: application/json" -d '[["SELECT name FROM foo WHERE id = ?", 1]]' |
  tee "$dir/f.json"
grep -q '"values":\[\["fiona"\]\]' "$dir/f.json" || {
  # A follower's local read may lag by a heartbeat: once more.
  sleep 0.5
  root_curl -XPOST "https://$follower/db/query?level=none" \
    -H "Content-Type: application/json" -d '[["SELECT name FROM foo WHERE id = ?", 1]]' |
    grep -q '"values":\[\["fiona"\]\]'
}

# The unified endpoint: a write, a read of it, a missing table.
root_curl -XPOST "https://$follower/db/request" -H "Content-Type: application/json" -d '[
    ["INSERT INTO foo(name, age) VALUES(?, ?)", "aoife", 40],
    ["SELECT name FROM foo WHERE age = ?", 40],
    ["SELECT * FROM bar"]
  ]' | tee "$dir/g.json"
grep -q '"values":\[\["aoife"\]\]' "$dir/g.json"
grep -q '"error":"no such table: bar"' "$dir/g.json"

# Every node is reachable and names its HTTP address; one leads.
root_curl "https://$follower/nodes?pretty" | tee "$dir/h.json"
[ "$(grep -c '"reachable": true' "$dir/h.json")" -eq 3 ]
[ "$(grep -c '"leader": true' "$dir/h.json")" -eq 1 ]
for h in "${https[@]}"; do
  grep -q "\"api_addr\": \"https://$h\"" "$dir/h.json"
  [ "$(curl -sS --cacert "$certs/ca.crt" "https://$h/readyz")" = "$(printf '[+]node ok\n[+]leader ok\n[+]store ok')" ]
done

# Credentials: none, a wrong password, a user without the permission.
code="$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$certs/ca.crt" \
  -XPOST "https://$leader/db/execute" -d '["DELETE FROM foo"]')"
[ "$code" = 401 ] || { echo "no credentials: $code"; exit 1; }
"$root/tools/shell" --certs_dir="$certs" --nodes="$(sed -n 's/^shell:.*--nodes=\(.*\)$/\1/p' "$out")" \
  -c ".user add reader query long-password" >/dev/null
code="$(curl -sS -o "$dir/i.json" -w '%{http_code}' --cacert "$certs/ca.crt" \
  -u reader:long-password -XPOST "https://$follower/db/execute" \
  -d '["DELETE FROM foo"]')"
[ "$code" = 403 ] || { cat "$dir/i.json"; echo "reader wrote: $code"; exit 1; }
grep -q "lacks the execute permission" "$dir/i.json"
code="$(curl -sS -o "$dir/j.json" -w '%{http_code}' --cacert "$certs/ca.crt" \
  -u reader:wrong -G "https://$follower/db/query" --data-urlencode 'q=SELECT 1')"
[ "$code" = 401 ] || { echo "wrong password: $code"; exit 1; }
curl -sS --cacert "$certs/ca.crt" -u reader:long-password -G \
  "https://$follower/db/query" --data-urlencode 'q=SELECT count(*) FROM foo' |
  grep -q '"values":\[\[4\]\]'
# Plain HTTP to a TLS listener gets nothing.
if curl -sS -m 5 "http://${https[0]}/status" >/dev/null 2>&1; then
  echo "plain HTTP reached a TLS listener"; exit 1
fi

# A read-only node (--non_voter): it joins as a learner, stays one, and
# serves reads at level none and auto.
"$root/tools/raftsql_certs" node --dir="$certs" --id=4 >/dev/null
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc4="127.0.0.1:$(free_port)" http4="127.0.0.1:$(free_port)"
"$root/server/raftsql_server" --id=4 --listen="$grpc4" --http_listen="$http4" \
  --certs_dir="$certs" --join="$(sed -n 's/^  node 1  \([^ ]*\) .*$/\1/p' "$out")" \
  --non_voter --data_dir="$dir/node4" >"$dir/node4.log" 2>&1 &
node4_pid=$!
trap 'kill -9 $cluster_pid $node4_pid 2>/dev/null || true; pkill -9 -f "$dir" || true' EXIT
for _ in $(seq 1 200); do
  root_curl -G "https://$http4/db/query?level=auto" \
    --data-urlencode 'q=SELECT count(*) FROM foo' 2>/dev/null |
    grep -q '"values":\[\[4\]\]' && break
  sleep 0.1
done
root_curl -G "https://$http4/db/query?level=none" \
  --data-urlencode 'q=SELECT count(*) FROM foo' | grep -q '"values":\[\[4\]\]'
root_curl "https://$leader/nodes?nonvoters&ver=2" | tee "$dir/k.json"
grep -q '"id":"4","leader":false,"reachable":true,"time":[0-9.e-]*,"voter":false' "$dir/k.json"
# Still a learner a while later (never promoted).
sleep 1
root_curl "https://$leader/status" | grep -q '"client_addr":"'"$grpc4"'","id":"4","suffrage":"Nonvoter"'
kill -TERM "$node4_pid"
wait "$node4_pid" || true

# --log_format=json: every line an object; elections and the join logged.
python3 - "$dir" <<'PY'
import json, sys
events = []
for n in (1, 2, 3):
    for line in open(f"{sys.argv[1]}/node{n}.log"):
        e = json.loads(line)  # Fails the test on a line that is not JSON.
        assert {"ts", "level", "event", "msg"} <= e.keys(), e
        events.append(e)
kinds = {e["event"] for e in events}
assert {"start", "election", "membership"} <= kinds, kinds
leads = [e for e in events if e["event"] == "election" and e["node"] == e["leader"]]
assert leads and all("term" in e for e in leads), leads
joined = [e for e in events if e["event"] == "membership" and e.get("member") == 4]
assert joined and joined[0]["change"] == "added as a learner", joined
print("json log:", len(events), "events:", sorted(kinds))
PY

# rqlite's freshness: a level=none read is refused by a node that has not
# heard from its leader within `freshness`, and answered without it. The
# follower is left alone: the other two stop.
root_curl -G "https://$follower/db/query?level=none&freshness=1h" \
  --data-urlencode 'q=SELECT count(*) FROM foo' | grep -q '"values":\[\[4\]\]'
for n in 1 2 3; do
  [ "${https[$((n - 1))]}" = "$follower" ] && continue
  pkill -TERM -f -- "--data_dir=$dir/node$n( |$)"
done
stale=""
for _ in $(seq 1 100); do
  stale="$(root_curl -G "https://$follower/db/query?level=none&freshness=300ms" \
    --data-urlencode 'q=SELECT count(*) FROM foo')"
  echo "$stale" | grep -q "stale read" && break
  sleep 0.1
done
echo "$stale"
echo "$stale" | grep -q "stale read: this node"
root_curl -G "https://$follower/db/query?level=none" \
  --data-urlencode 'q=SELECT count(*) FROM foo' | grep -q '"values":\[\[4\]\]'

kill -INT "$cluster_pid"
wait "$cluster_pid" || true
grep -q "^stopped" "$out"
echo PASS
