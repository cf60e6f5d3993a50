#!/bin/bash
# The shipped model (ai/model/hub-actions.gguf), measured by the runtime
# itself on situations it was not trained on (issue 18): situations.py
# writes them with the runbook's action and the rules baseline's, and
# evaluate renders each in C++ (it must be the corpus's text), scores the
# actions and fails below the accuracy given.
set -euo pipefail
situations="$1"
evaluate="$2"
model="$3"
out="${TEST_TMPDIR:-$(mktemp -d)}"
/usr/bin/python3 "$situations" "$out/held_out.tsv" 424242 400
"$evaluate" "$model" "$out/held_out.tsv" 0.93
