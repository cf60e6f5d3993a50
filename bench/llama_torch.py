#!/usr/bin/python3
"""PyTorch's eager CPU forward pass of a GGUF Llama model (F32), the peer
bench/llama_benchmark measures the runtime against (issue 18): prefill
tokens/s, decode tokens/s (PyTorch eager has no KV cache of its own: each
token recomputes the sequence, the way a plain forward pass runs), and one
decision (7 actions scored as one batch of 7 sequences).

Usage: llama_torch.py MODEL.gguf [--threads N]
"""

import argparse
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/ai/model")
sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/ai/reference")
import train  # noqa: E402


def read_gguf(path):
    """Metadata (scalars) and F32 tensors of a GGUF v3 file."""
    b = open(path, "rb").read()
    at = 0

    def take(fmt):
        nonlocal at
        v = struct.unpack_from("<" + fmt, b, at)
        at += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        n = take("Q")
        nonlocal at
        s = b[at:at + n].decode()
        at += n
        return s

    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
             10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            it, n = take("I"), take("Q")
            return [value(it) for _ in range(n)]
        return take(sizes[t])

    assert take("I") == 0x46554747 and take("I") == 3
    tensors, kvs = take("Q"), take("Q")
    meta = {}
    for _ in range(kvs):
        k = string()
        meta[k] = value(take("I"))
    infos = []
    for _ in range(tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        ttype, off = take("I"), take("Q")
        assert ttype == 0, "F32 models only"
        infos.append((name, dims, off))
    align = meta.get("general.alignment", 32)
    data = -(-at // align) * align
    out = {}
    for name, dims, off in infos:
        n = int(np.prod(dims))
        a = np.frombuffer(b, dtype="<f4", count=n, offset=data + off)
        out[name] = torch.tensor(a.reshape(list(reversed(dims))).copy())
    return meta, out


def load(path):
    meta, t = read_gguf(path)
    c = dict(dim=meta["llama.embedding_length"],
             hidden=meta["llama.feed_forward_length"],
             layers=meta["llama.block_count"],
             heads=meta["llama.attention.head_count"],
             kv_heads=meta["llama.attention.head_count_kv"],
             context=meta["llama.context_length"],
             eps=meta["llama.attention.layer_norm_rms_epsilon"],
             theta=meta.get("llama.rope.freq_base", 10000.0))
    vocab = t["token_embd.weight"].shape[0]
    m = train.Llama(vocab, c)
    with torch.no_grad():
        m.embed.weight.copy_(t["token_embd.weight"])
        m.norm.copy_(t["output_norm.weight"])
        for i, layer in enumerate(m.layers):
            p = "blk.%d." % i
            layer.attn_norm.copy_(t[p + "attn_norm.weight"])
            layer.ffn_norm.copy_(t[p + "ffn_norm.weight"])
            for name, mod in [("attn_q", layer.q), ("attn_k", layer.k),
                              ("attn_v", layer.v), ("attn_output", layer.o),
                              ("ffn_gate", layer.gate), ("ffn_up", layer.up),
                              ("ffn_down", layer.down)]:
                mod.weight.copy_(t[p + name + ".weight"])
    m.eval()
    return m, vocab


def per_call(f, seconds=1.0):
    f()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        f()
        n += 1
    return (time.perf_counter() - start) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m, vocab = load(a.model)
    with torch.no_grad():
        for n in (16, 64):
            x = torch.arange(n)[None, :] * 37 % vocab
            s = per_call(lambda: m(x))
            print("torch prefill/%d: %.0f tokens/s" % (n, n / s))
        x = torch.arange(49)[None, :] * 37 % vocab
        s = per_call(lambda: m(x)[:, -1])
        print("torch decode at position 48 (no cache): %.0f tokens/s" %
              (1 / s))
        # One decision: a 55-token prompt and 7 three-token continuations,
        # one batch.
        x = torch.arange(58)[None, :].repeat(7, 1) * 37 % vocab
        s = per_call(lambda: torch.log_softmax(m(x), -1))
        print("torch decision (7 x 58 tokens, one batch): %.2f ms" %
              (s * 1000))


if __name__ == "__main__":
    main()
