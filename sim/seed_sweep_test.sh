#!/usr/bin/env bash
# CI's fixed seed sweep: 500 seeds of the default simulation (5 nodes, 8
# clients, 2,000 operations, every fault kind in play), with determinism
# checked on every 10th seed. Any failing seed fails the test and the summary
# prints the command that replays it. Then 200 seeds whose state machines
# pause their apply now and then (a file swap's pause).
set -euo pipefail
"$1" --seeds=500 --from=1 --determinism-every=10
"$1" --pause-apply --seeds=200 --from=6001 --determinism-every=20
