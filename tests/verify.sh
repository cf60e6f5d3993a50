#!/usr/bin/env bash
# tests/verify.sh --scenario NAME: end-to-end scenarios against real
# raftsql_server processes on 127.0.0.1 (full, restart_single_node,
# prepare_commit_kill, no_leader, membership, ...; --peer_transport=stream
# runs the nodes with the stream peer transport). Under `bazel test` the binaries come from
# the runfiles; run by hand, it builds them with ./bazelw first.
set -euo pipefail

scenario=""
extra=()
while (($#)); do
  case "$1" in
    --scenario) scenario="$2"; shift 2 ;;
    --scenario=*) scenario="${1#*=}"; shift ;;
    --peer_transport=*) extra+=("$1"); shift ;;
    *) echo "usage: tests/verify.sh --scenario full|restart_single_node|prepare_commit_kill|no_leader|membership" >&2; exit 2 ;;
  esac
done
[ -n "$scenario" ] || { echo "verify.sh: --scenario is required" >&2; exit 2; }

if [ -n "${TEST_SRCDIR:-}" ]; then
  root="$TEST_SRCDIR/raftsql"
  dir="$(mktemp -d "${TEST_TMPDIR:-/tmp}/verify-$scenario-XXXXXX")"
else
  repo="$(cd "$(dirname "$0")/.." && pwd)"
  (cd "$repo" && ./bazelw build //tests:verify //tests:libfail_fsync.so \
    //server:raftsql_server //edge:agent >&2)
  root="$repo/bazel-bin"
  dir="$(mktemp -d "/tmp/raftsql-verify-$scenario-XXXXXX")"
fi

exec "$root/tests/verify" --scenario="$scenario" \
  --server="$root/server/raftsql_server" --agent="$root/edge/agent" \
  --fail_fsync="$root/tests/libfail_fsync.so" --dir="$dir" ${extra[@]+"${extra[@]}"}
