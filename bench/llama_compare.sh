#!/bin/bash
# The TinyLLM runtime against PyTorch's eager CPU forward pass, same model
# file, same run (issue 18): prefill and decode tokens/s, one decision's
# latency, and the memory-bandwidth limit (model bytes per token against
# the bandwidth measured here).
#
#   bench/llama_compare.sh [MODEL.gguf]   (after ./bazelw build -c opt
#                                          //bench:llama_benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-ai/model/hub-actions.gguf}
bin=bazel-out/k8-opt/bin/bench/llama_benchmark
[ -x "$bin" ] || { echo "build it: ./bazelw build -c opt //bench:llama_benchmark" >&2; exit 1; }
echo "== raftsql TinyLLM runtime (one thread), $model"
"$bin" --model="$model" --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "median|Benchmark"
for threads in 1 2; do
  echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') eager, $threads thread(s)"
  /usr/bin/python3 bench/llama_torch.py "$model" --threads "$threads"
done
