#!/usr/bin/env bash
# The Raft core is pure by construction: every source under core/ passes the
# purity check, and the check itself rejects a known-impure file (so this test
# can fail).
set -euo pipefail
check=tools/check_core_purity.sh

core_files=()
for f in "$@"; do
  case "$f" in
    core/*.h | core/*.cc) core_files+=("$f") ;;
  esac
done
if ((${#core_files[@]} < 10)); then
  echo "expected the core's sources, got ${#core_files[@]} files" >&2
  exit 1
fi
"$check" "${core_files[@]}"

if "$check" tests/testdata/impure_core/impure.cc 2>/dev/null; then
  echo "the purity check accepted a file that uses <thread> and a clock" >&2
  exit 1
fi
echo "core purity: ${#core_files[@]} files clean; impure fixture rejected"
