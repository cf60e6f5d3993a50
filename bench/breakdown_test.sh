#!/usr/bin/env bash
# load --breakdown on a 3-node cluster of its own: every acknowledged
# write is joined with the nodes' traces, and every stage is printed.
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
out="$(timeout 120 "$root/bench/load" --start=3 --insecure --concurrency=1 \
  --ops=200 --max_seconds=30 --breakdown)"
echo "$out"
joined="$(echo "$out" | sed -n 's/^critical path of \([0-9]*\) writes (of \([0-9]*\) acknowledged).*/\1 \2/p')"
read -r n of <<<"$joined"
[ "$of" -eq 200 ] || { echo "want 200 acknowledged writes, got $of"; exit 1; }
# A write proposed before its leader's trace began, or answered across a
# stop, may lack a stage; nearly all must be whole.
[ "$n" -ge 190 ] || { echo "only $n of $of writes joined"; exit 1; }
for stage in "leader: request received" "follower: log write ends" \
  "leader: committed" "leader: applied" "client receives"; do
  echo "$out" | grep -q "  $stage " || { echo "no row for $stage"; exit 1; }
done
echo "$out" | grep -q "^floor: fdatasync p50" || { echo "no floor"; exit 1; }
