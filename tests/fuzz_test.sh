#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang (coverage-guided fuzzing
# needs clang's instrumentation; the rest of the build uses g++), then runs
# each for a bounded time over its regression inputs (tests/fuzz/<target>/:
# every crash found is kept there and replayed first). Fails if any target
# crashes, leaks, times out or trips a CHECK.
#
#   tests/fuzz_test.sh [--seconds=N] [--only=TARGET] [--keep=DIR]
#
# Under Bazel (//tests:fuzz_test) it runs from the runfiles tree, where the
# generated protobuf code sits under bazel-out; by hand, from the workspace
# after a build (`./bazelw build //net:proto`).
set -euo pipefail

seconds=${FUZZ_SECONDS:-15}
only=""
keep=""
for a in "$@"; do
  case "$a" in
    --seconds=*) seconds=${a#--seconds=} ;;
    --only=*) only=${a#--only=} ;;
    --keep=*) keep=${a#--keep=} ;;
    *) echo "usage: $0 [--seconds=N] [--only=TARGET] [--keep=DIR]" >&2; exit 2 ;;
  esac
done

root=$(pwd)
[ -d "$root/core" ] || root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
gen=$(dirname "$(find -L . -path '*net/raftsql.pb.h' -not -path './net/*' | head -1)")
gen=${gen%/net}
if [ -z "$gen" ] || [ ! -f "$gen/net/raftsql.pb.cc" ]; then
  echo "fuzz_test: generated net/raftsql.pb.cc not found (build //net:proto)" >&2
  exit 1
fi
work=${keep:-${TEST_TMPDIR:-$(mktemp -d)}/fuzz}
mkdir -p "$work"
cxx=${CXX_FUZZ:-clang++-14}
command -v "$cxx" >/dev/null || cxx=clang++
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION
  -DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL
  -I. -I"$gen" -w)
# (and spdlog: obs/log.cc)
absl="$(pkg-config --libs absl_status absl_statusor absl_strings \
  absl_str_format absl_cord absl_hash absl_raw_hash_set absl_synchronization \
  absl_time) -lspdlog -lfmt"

core_srcs=$(ls core/*.cc core/testing/*.cc | grep -v -e '_test\.cc$' -e '_fuzz\.cc$')
# The state machine's, and what it uses of obs/.
sm_srcs=$(ls sm/*.cc obs/*.cc | grep -v -e '_test\.cc$' -e '_fuzz\.cc$')

# Every source is compiled once (two at a time), then each target links the
# objects it needs.
objects() {  # objects SOURCES...: the object file of each source
  for src in "$@"; do echo "$work/obj/${src//\//_}.o"; done
}
compile_all() {
  mkdir -p "$work/obj"
  local start=$SECONDS
  printf '%s\n' "$@" | xargs -P 2 -I{} sh -c '
    out="$0/obj/$(echo {} | tr / _).o"
    [ -f "$out" ] && [ "$out" -nt {} ] && exit 0
    exec "$1" $2 -c {} -o "$out"' "$work" "$cxx" "${flags[*]}"
  echo "fuzz_test: compiled $# sources in $((SECONDS - start)) s"
}
link() {  # link NAME SOURCES... -- LIBS...
  local name=$1
  shift
  local srcs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do srcs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  # shellcheck disable=SC2046,SC2086
  "$cxx" "${flags[@]}" $(objects "${srcs[@]}") -o "$work/$name" "$@" $absl \
    -lpthread
}

run() {  # run NAME
  local name=$1
  local seeds="tests/fuzz/$name"
  mkdir -p "$work/corpus-$name"
  local inputs=("$work/corpus-$name")
  [ -d "$seeds" ] && inputs+=("$seeds")
  local log="$work/$name.log"
  if ! "$work/$name" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 \
      -print_final_stats=1 -artifact_prefix="$work/$name-" \
      "${inputs[@]}" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz_test: $name FAILED; the input is in $work/$name-* (add it to $seeds)" >&2
    return 1
  fi
  local execs
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "fuzz_test: $name: ${execs:-?} executions in $seconds s, no crash"
}

targets=(raft_fuzz command_fuzz convert_fuzz sql_fuzz gguf_fuzz)
# shellcheck disable=SC2086
compile_all core/raft_fuzz.cc sm/command_fuzz.cc sm/sql_fuzz.cc \
  net/convert_fuzz.cc net/convert.cc "$gen/net/raftsql.pb.cc" $core_srcs $sm_srcs \
  ai/gguf_fuzz.cc ai/gguf.cc ai/llama.cc ai/ops.cc ai/tokenizer.cc
status=0
for t in "${targets[@]}"; do
  [ -n "$only" ] && [ "$only" != "$t" ] && continue
  # shellcheck disable=SC2086
  case "$t" in
    raft_fuzz) link raft_fuzz core/raft_fuzz.cc $core_srcs ;;
    command_fuzz)
      link command_fuzz sm/command_fuzz.cc $sm_srcs $core_srcs -- -lsqlite3 ;;
    convert_fuzz)
      link convert_fuzz net/convert_fuzz.cc net/convert.cc \
        "$gen/net/raftsql.pb.cc" $core_srcs -- -lprotobuf ;;
    sql_fuzz)
      link sql_fuzz sm/sql_fuzz.cc $sm_srcs $core_srcs -- -lsqlite3 ;;
    gguf_fuzz)
      link gguf_fuzz ai/gguf_fuzz.cc ai/gguf.cc ai/llama.cc ai/ops.cc \
        ai/tokenizer.cc $core_srcs ;;
  esac
  run "$t" || status=1
done

# A planted bug the kept inputs must catch (STYLE.md: a test of the tests):
# the core without its message validation, as a patch to a copy of the
# source. Replaying tests/fuzz/raft_fuzz alone must crash it.
planted() {
  local src="$work/planted_raft_network.cc"
  sed 's/= ValidateNetworkMessage(m, max_snapshot_bytes_);/= absl::OkStatus();/' \
    core/raft_network.cc >"$src"
  if cmp -s core/raft_network.cc "$src"; then
    echo "fuzz_test: the planted-bug patch no longer applies" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" -c "$src" -o "$work/planted_raft_network.o"
  local objs=()
  for o in $(objects core/raft_fuzz.cc $core_srcs); do
    [[ "$o" == *core_raft_network.cc.o ]] || objs+=("$o")
  done
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" "${objs[@]}" "$work/planted_raft_network.o" \
    -o "$work/raft_fuzz_planted" $absl -lpthread
  if "$work/raft_fuzz_planted" -runs=0 -artifact_prefix="$work/planted-" \
      tests/fuzz/raft_fuzz \
      >"$work/planted.log" 2>&1; then
    echo "fuzz_test: the kept inputs no longer catch the planted bug" >&2
    return 1
  fi
  echo "fuzz_test: planted bug (no message validation) caught by the kept inputs"
}
if [ -z "$only" ] || [ "$only" = raft_fuzz ]; then planted || status=1; fi
exit $status
