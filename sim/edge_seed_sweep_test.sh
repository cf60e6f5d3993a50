#!/usr/bin/env bash
# CI's edge sweep: 30 seeds with simulated edge devices (the real agent
# logic and buffer on simulated disks) uploading, running commands and
# reporting twins through sessions on the nodes, under edge faults (crashes,
# wiped disks, edge-hub partitions, broken streams) and every cluster fault;
# the database on the simulated disk; determinism on every 10th seed.
set -euo pipefail
"$1" --edges=3 --sql-disk --seeds=30 --from=7001 --determinism-every=10
