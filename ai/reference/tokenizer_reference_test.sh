#!/bin/bash
# The tokenizer against SentencePiece (issue 18): tokenizer_reference.py
# trains a BPE model and writes SentencePiece's ids for held-out and
# awkward texts; tokenizer_reference_check encodes them with ours. Debian's
# python3 (python3-sentencepiece, which ./bazelw installs).
set -euo pipefail
out="${TEST_TMPDIR:-$(mktemp -d)}"
/usr/bin/python3 "$1" "$out"
"$2" "$out/tokenizer.gguf" "$out/tokenizer.expected"
