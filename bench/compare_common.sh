# Sourced by bench/compare_etcd.sh and bench/compare_rqlite.sh after they
# cd to the repository: builds the load generator and the server (-c opt),
# sets $load, makes a scratch directory $dir named after $1, keeps the
# PIDs its caller starts in $pids and stops them (then removes $dir) on
# exit; defines ratio A B (A / B, two decimals; empty if B is 0).
./bazelw build -c opt //bench:load //server:raftsql_server >&2
load="$PWD/bazel-bin/bench/load"

dir="$(mktemp -d "/tmp/raftsql-vs-$1-XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
