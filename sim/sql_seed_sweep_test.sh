#!/usr/bin/env bash
# CI's SQL sweep: 50 seeds of the workload as SQL on the real
# SqliteStateMachine (registers checked for linearizability, a bank whose
# total is checked on every read), with snapshots, compaction and every fault
# kind; determinism checked on every 10th seed.
set -euo pipefail
"$1" --sql --seeds=50 --from=1001 --determinism-every=10
