#!/usr/bin/env bash
# bench/compare_etcd.sh [CONCURRENCY ...] — etcd 3.4 (Debian etcd-server)
# and raftsql back to back on this machine, both as 3 durable members on
# 127.0.0.1, driven by the same load generator (//bench:load) with the same
# concurrency and number of operations: single-key Puts against single-row
# INSERTs, each sent to its leader (raftsql twice: a unary call per write,
# then the writes pipelined over one ExecuteStream). Prints ops/s and p99 of
# each and the ratios to etcd. Default concurrencies: 1 16 64. Every process it starts is stopped
# by PID on exit. Both run plaintext (etcd without TLS, raftsql --insecure),
# so the comparison is like for like.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

if ! command -v etcd >/dev/null; then
  echo "compare_etcd: installing etcd-server from Debian" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends etcd-server >&2
fi
./bazelw build -c opt //bench:load //server:raftsql_server >&2
load="$repo/bazel-bin/bench/load"

dir="$(mktemp -d /tmp/raftsql-vs-etcd-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

cluster=""
clients=()
for i in 1 2 3; do
  cluster+="${cluster:+,}e$i=http://127.0.0.1:$((23800 + i))"
  clients+=("127.0.0.1:$((23700 + i))")
done
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "http://127.0.0.1:$((23700 + i))" \
    --advertise-client-urls "http://127.0.0.1:$((23700 + i))" \
    --listen-peer-urls "http://127.0.0.1:$((23800 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + i))" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --log-level error >"$dir/e$i.log" 2>&1 &
  pids+=($!)
done
endpoints="$(IFS=,; echo "${clients[*]}")"
# Bounded wait for a leader (the generator finds it through the API).
for _ in $(seq 1 60); do
  "$load" --etcd="$endpoints" --ops=1 >/dev/null 2>&1 && break
  sleep 0.5
done

printf "%-12s %12s %8s %14s %8s %6s %14s %8s %6s\n" concurrency "etcd ops/s" \
  "p99 ms" "raftsql ops/s" "p99 ms" ratio "stream ops/s" "p99 ms" ratio
for c in "${@:-1 16 64}"; do
  for c1 in $c; do
    ops=$((c1 * 300 + 3000))
    e="$("$load" --etcd="$endpoints" --concurrency="$c1" --ops="$ops" --max_seconds=30)"
    r="$("$load" --start=3 --insecure --concurrency="$c1" --ops="$ops" --max_seconds=30)"
    # The same writes over one pipelined ExecuteStream.
    s="$("$load" --start=3 --insecure --concurrency="$c1" --ops="$ops" --max_seconds=30 \
      --stream=1)"
    eo="$(echo "$e" | awk '/throughput/ {print $2}')"
    ep="$(echo "$e" | awk '/latency/ {print $8}')"
    ro="$(echo "$r" | awk '/throughput/ {print $2}')"
    rp="$(echo "$r" | awk '/latency/ {print $8}')"
    so="$(echo "$s" | awk '/throughput/ {print $2}')"
    sp="$(echo "$s" | awk '/latency/ {print $8}')"
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
    printf "%-12s %12s %8s %14s %8s %6s %14s %8s %6s\n" "$c1" "$eo" "$ep" \
      "$ro" "$rp" "$(ratio "$ro" "$eo")" "$so" "$sp" "$(ratio "$so" "$eo")"
  done
done
