#!/usr/bin/python3
"""An independent reference for the TinyLLM tokenizer (issue 18, part 3).

Trains a small SentencePiece BPE model (Debian's python3-sentencepiece) on
generated device situations, writes its vocabulary as GGUF tokenizer
metadata (pieces, scores, types, as llama.cpp's converter does), and the
token ids SentencePiece gives held-out and awkward texts, for
tokenizer_reference_check to reproduce.

Usage: tokenizer_reference.py OUT_DIR
"""

import io
import random
import struct
import sys

import sentencepiece as spm

from llama_reference import Gguf

VOCAB = 400


def situation(rng):
    device = "%s-%d" % (rng.choice(["pump", "fan", "valve", "chiller"]),
                        rng.randrange(1, 40))
    sensor = rng.choice(["temperature", "pressure", "vibration", "flow"])
    value = round(rng.uniform(-20, 120), rng.randrange(0, 3))
    trend = rng.choice(["rising", "falling", "steady", "stuck"])
    return "device %s %s %s %s at %s" % (device, sensor, value, trend,
                                         rng.choice(["08:15", "23:59",
                                                     "12:00"]))


def main():
    out_dir = sys.argv[1]
    rng = random.Random(11)
    corpus = [situation(rng) for _ in range(3000)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model,
        vocab_size=VOCAB, model_type="bpe", byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    types = []
    for i in range(n):
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.is_byte(i):
            types.append(6)
        else:
            types.append(1)
    g = Gguf()
    g.key("tokenizer.ggml.model", "str", "llama")
    g.key("tokenizer.ggml.tokens", "strs", pieces)
    g.key("tokenizer.ggml.scores", "f32s", scores)
    g.key("tokenizer.ggml.token_type", "i32s", types)
    g.key("tokenizer.ggml.bos_token_id", "u32", 1)
    g.key("tokenizer.ggml.eos_token_id", "u32", 2)
    g.key("tokenizer.ggml.unknown_token_id", "u32", 0)
    held_out = random.Random(12)
    texts = [situation(held_out) for _ in range(200)] + [
        "", " ", "  two  spaces  ", "tab\tand\nnew line",
        "temp\u00e9rature 27.5 \u00b0C", "\U0001F321 hot", "pump-3 pump-33",
        "device  device", "12345678901234567890", "\u00fcberhitzt!"]
    with open(out_dir + "/tokenizer.gguf", "wb") as f:
        f.write(g.bytes())
    with open(out_dir + "/tokenizer.expected", "wb") as f:
        f.write(struct.pack("<I", len(texts)))
        for text in texts:
            b = text.encode()
            ids = sp.encode(text)
            f.write(struct.pack("<I", len(b)) + b)
            f.write(struct.pack("<I%di" % len(ids), len(ids), *ids))


if __name__ == "__main__":
    main()
