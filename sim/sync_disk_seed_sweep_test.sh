#!/usr/bin/env bash
# The production server's configuration in the simulator: log writes that
# complete before Submit returns, and a leader that sends its appends while
# it writes them (thesis §10.2.1). 100 key/value seeds and 20 SQL seeds with
# every fault kind; determinism checked on every 10th seed.
set -euo pipefail
"$1" --sync-disk --seeds=100 --from=3001 --determinism-every=10
"$1" --sync-disk --sql --seeds=20 --from=4001 --determinism-every=10
