#!/bin/bash
# The runtime against an independent PyTorch implementation (issue 18):
# for each model shape, llama_reference.py writes a seeded random model and
# its float64 logits and greedy tokens; llama_reference_check computes them
# with the runtime and compares. Debian's python3 (with python3-torch,
# which ./bazelw installs), not whatever python3 is first on the PATH.
set -euo pipefail
script="$1"
check="$2"
out="${TEST_TMPDIR:-$(mktemp -d)}"
python=/usr/bin/python3
for shape in f32-tied f32-gqa-separate f16-gqa q8-mqa q8-gqa-separate; do
  "$python" "$script" "$shape" 7 "$out"
  # The reference computes in float64 from the very weights the file
  # holds (F16 and Q8_0 dequantized); the runtime computes in float32.
  "$check" "$out/$shape.gguf" "$out/$shape.expected" 1e-4
done
