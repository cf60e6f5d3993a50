#!/usr/bin/env bash
# bench/compare_etcd.sh [CONCURRENCY ...] — etcd 3.4 (Debian etcd-server)
# and raftsql back to back on this machine, both as 3 durable members on
# 127.0.0.1, driven by the same load generator (//bench:load) with the same
# concurrency and number of operations, each request sent to its leader:
#   writes: single-key Puts against single-row INSERTs (raftsql twice: a
#     unary call per write, then the writes pipelined over one
#     ExecuteStream);
#   linearizable point reads: Range against SELECT at LINEARIZABLE (both
#     a ReadIndex round);
#   local point reads: serializable Range against SELECT at NONE.
# Every point runs 3 times; the medians of ops/s, p50 and p99 are printed
# with raftsql's ratios to etcd (ops/s: higher is better; p50: lower),
# and the CPU per operation of the client and the three members together
# (microseconds; lower is better).
# First it probes the disk (4 KiB synced writes), so that a slow-disk day
# shows. Default concurrencies: 1 16 64. Every process it starts is
# stopped by PID on exit. RAFTSQL_PEER_TRANSPORT=stream runs raftsql's
# nodes with the stream peer transport (default grpc). Both run plaintext (etcd without TLS, raftsql
# --insecure), so the comparison is like for like.
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
# shellcheck source=bench/compare_common.sh
source bench/compare_common.sh etcd

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

probe="$(dd if=/dev/zero of="$dir/probe" bs=4k count=300 oflag=dsync 2>&1 |
  awk '/copied/ {print $(NF-3)}')"
echo "disk: 300 synced 4 KiB writes in ${probe} s ($(awk -v t="$probe" \
  'BEGIN { printf "%.0f", t / 300 * 1e6 }') us each)"
rm -f "$dir/probe"

median() { printf "%s\n" "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
# The medians of 3 runs of load with these arguments: "ops/s p50 p99 cpu",
# cpu being microseconds of CPU per operation over the client and the
# three servers (all their threads).
point() {
  local ops=() p50=() p99=() cpu=() out
  for _ in 1 2 3; do
    out="$("$load" "$@" --max_seconds=30)"
    echo "$out" | grep "^first error" >&2 || true
    ops+=("$(echo "$out" | awk '/throughput/ {print $2}')")
    p50+=("$(echo "$out" | awk '/latency/ {print $4}')")
    p99+=("$(echo "$out" | awk '/latency/ {print $8}')")
    cpu+=("$(echo "$out" | awk '/^cpu us\/op/ {print $3}')")
  done
  echo "$(median "${ops[@]}") $(median "${p50[@]}") $(median "${p99[@]}")" \
    "$(median "${cpu[@]}")"
}
row() {  # name c "etcd point" "raftsql point"
  local eo ep5 ep9 ec ro rp5 rp9 rc
  read -r eo ep5 ep9 ec <<<"$3"
  read -r ro rp5 rp9 rc <<<"$4"
  printf "%-14s %-4s %9s %7s %7s %6s  %9s %7s %7s %6s  %6s %6s %6s\n" "$1" \
    "$2" "$eo" "$ep5" "$ep9" "$ec" "$ro" "$rp5" "$rp9" "$rc" \
    "$(ratio "$ro" "$eo")" "$(ratio "$rp5" "$ep5")" "$(ratio "$rc" "$ec")"
}

printf "%-14s %-4s %9s %7s %7s %6s  %9s %7s %7s %6s  %6s %6s %6s\n" \
  requests c "etcd op/s" p50 p99 "cpu us" "raftsql" p50 p99 "cpu us" \
  "x op/s" "x p50" "x cpu"
for c in ${@:-1 16 64}; do
  ops=$((c * 300 + 3000))
  raftsql=(--start=3 --insecure --concurrency="$c" --ops="$ops"
    --peer_transport="${RAFTSQL_PEER_TRANSPORT:-grpc}")
  etcd=(--etcd="$endpoints" --concurrency="$c" --ops="$ops"
    --cpu_pids="$(IFS=,; echo "${pids[*]}")")
  e="$(point "${etcd[@]}")"
  row "write" "$c" "$e" "$(point "${raftsql[@]}")"
  row "write stream" "$c" "$e" "$(point "${raftsql[@]}" --stream=1)"
  row "read lin" "$c" "$(point "${etcd[@]}" --mix=select_lin)" \
    "$(point "${raftsql[@]}" --mix=select_lin)"
  row "read local" "$c" "$(point "${etcd[@]}" --mix=select)" \
    "$(point "${raftsql[@]}" --mix=select)"
done
