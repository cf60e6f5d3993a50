#!/usr/bin/env bash
# CI's SQL sweep: 50 seeds of the workload as SQL on the real
# SqliteStateMachine (registers checked for linearizability, a bank whose
# total is checked on every read), with snapshots, compaction and every fault
# kind; determinism checked on every 10th seed. Then 30 seeds with the
# database in files on the simulated disk.
set -euo pipefail
"$1" --sql --seeds=50 --from=1001 --determinism-every=10
# The database on the simulated disk: crashes lose unsynced SQLite writes and
# SQLite's own WAL recovery runs on restart.
"$1" --sql-disk --seeds=30 --from=5001 --determinism-every=10
