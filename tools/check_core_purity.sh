#!/usr/bin/env bash
# Fails if any given C++ source of the Raft core does I/O, threads, clocks or
# global randomness, or names gRPC, RocksDB or SQLite (DESIGN.md §1). Test
# files (*_test.cc) and the test-only harness are exempt from nothing: they
# must stay pure too, so the simulator can run them.
#
# usage: check_core_purity.sh FILE...
set -euo pipefail

forbidden=(
  '#include[[:space:]]*<(thread|mutex|shared_mutex|condition_variable|future|atomic|chrono|random|ctime|fstream|filesystem|iostream)>'
  '#include[[:space:]]*"absl/(synchronization|time)/'
  '#include[[:space:]]*[<"](grpc|grpcpp|rocksdb|sqlite3|sys/|unistd|fcntl|pthread)'
  'std::(thread|jthread|mutex|async|random_device|this_thread)'
  '_clock::now'
  'random_device'
  '\b(grpc|rocksdb|sqlite3)_?[A-Za-z]*::'
  '\b(rand|srand|time|sleep|usleep|fopen|open)[[:space:]]*\('
)

status=0
for file in "$@"; do
  for pattern in "${forbidden[@]}"; do
    if hits=$(grep -nE "$pattern" "$file"); then
      echo "$file: core must stay pure, found /$pattern/:" >&2
      echo "$hits" | sed 's/^/    /' >&2
      status=1
    fi
  done
done
exit $status
