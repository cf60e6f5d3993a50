#!/usr/bin/env bash
# CI's DecisionMaker sweep: 20 seeds of the labelled-fault scenario with
# the operator's rules, 3 with the shipped model through a model rule, on
# four simulated edges and the database on the simulated disk, every
# cluster and edge fault in play; determinism on every 10th seed. Any
# seed whose checkers fail (a disallowed command issued, a trigger acted
# on twice, a decision beyond the commit index) fails the test.
set -euo pipefail
"$1" --decisions=rules --sql-disk --seeds=20 --from=8001 --determinism-every=10
"$1" --decisions=model --model-dir="$(dirname "$2")" --sql-disk --seeds=3 \
  --from=8101 --determinism-every=3
