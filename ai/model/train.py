#!/usr/bin/python3
"""Trains the hub's action model (issue 18, part 3) and writes it as GGUF.

The corpus is situations.py's: rendered device situations, each followed
by the runbook's action and a one-line rationale. A SentencePiece BPE
vocabulary is trained on it (digits split, so numbers read digit by
digit), then a small Llama (the architecture ai/llama.h computes:
RMSNorm, rotary positions on adjacent pairs, grouped-query attention,
SwiGLU) learns to continue the prompt; the loss counts only the answer's
tokens. The model then scores the allow-listed actions; free text never
becomes a command.

Usage: train.py OUT.gguf [--examples N] [--epochs N] [--seed N]
Seeded (the data, the initial weights, the batches); with two threads
PyTorch's reductions may still differ in their last bits from run to
run. Prints the held-out accuracy of the model (PyTorch, scoring each
action) and of the rules baseline.
"""

import argparse
import io
import math
import random
import struct
import sys
import time

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/reference")
import situations as S  # noqa: E402
from llama_reference import Gguf  # noqa: E402

CONFIG = dict(dim=64, hidden=176, layers=3, heads=4, kv_heads=2, context=128,
              eps=1e-5, theta=10000.0)
VOCAB = 320
# The action's tokens weigh this much more in the loss than the
# rationale's (the rationale mostly copies numbers from the prompt).
ACTION_WEIGHT = 8.0
# A situation that calls for no action is kept with this chance: most
# situations are normal, and the model must learn the others.
KEEP_NONE = 0.35


def rope(x, theta):
    seq, hd = x.shape[1], x.shape[-1]
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    angles = torch.outer(torch.arange(seq).float(), freqs)
    turn = torch.polar(torch.ones_like(angles), angles)
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], hd // 2, 2))
    return torch.view_as_real(xc * turn[None, :, None, :]).reshape(x.shape)


class Llama(torch.nn.Module):
    def __init__(self, vocab, c):
        super().__init__()
        self.c = c
        d, h = c["dim"], c["hidden"]
        kv = c["kv_heads"] * d // c["heads"]
        self.embed = torch.nn.Embedding(vocab, d)
        # Small, as Llama initializes it: the output matrix is this one.
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["layers"]):
            m = torch.nn.Module()
            m.attn_norm = torch.nn.Parameter(torch.ones(d))
            m.q = torch.nn.Linear(d, d, bias=False)
            m.k = torch.nn.Linear(d, kv, bias=False)
            m.v = torch.nn.Linear(d, kv, bias=False)
            m.o = torch.nn.Linear(d, d, bias=False)
            m.ffn_norm = torch.nn.Parameter(torch.ones(d))
            m.gate = torch.nn.Linear(d, h, bias=False)
            m.up = torch.nn.Linear(d, h, bias=False)
            m.down = torch.nn.Linear(h, d, bias=False)
            self.layers.append(m)
        self.norm = torch.nn.Parameter(torch.ones(d))

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) +
                               self.c["eps"]) * w

    def forward(self, tokens):
        c = self.c
        b, seq = tokens.shape
        hd = c["dim"] // c["heads"]
        x = self.embed(tokens)
        mask = torch.full((seq, seq), float("-inf")).triu(1)
        for m in self.layers:
            h = self.rms(x, m.attn_norm)
            q = rope(m.q(h).view(b, seq, c["heads"], hd), c["theta"])
            k = rope(m.k(h).view(b, seq, c["kv_heads"], hd), c["theta"])
            v = m.v(h).view(b, seq, c["kv_heads"], hd)
            group = c["heads"] // c["kv_heads"]
            k = k.repeat_interleave(group, dim=2)
            v = v.repeat_interleave(group, dim=2)
            s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd) + mask
            a = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(s, -1), v)
            x = x + m.o(a.reshape(b, seq, c["dim"]))
            h = self.rms(x, m.ffn_norm)
            x = x + m.down(torch.nn.functional.silu(m.gate(h)) * m.up(h))
        # The output matrix is the embedding's (tied).
        return self.rms(x, self.norm) @ self.embed.weight.T


def train_tokenizer(texts, seed):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=VOCAB,
        model_type="bpe", byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2, num_threads=1)
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def encode(sp, situation):
    """Tokens of prompt + answer (BOS first), where the answer starts and
    where its action ends."""
    prompt, answer = S.example(situation)
    p = sp.encode(prompt)
    full = sp.encode(prompt + answer)
    assert full[:len(p)] == p, "the prompt's tokens are not a prefix"
    action = sp.encode(prompt + " %s\n" % S.expert(situation)[0])
    return [1] + full, 1 + len(p), 1 + len(action)


def batches(encoded, size, rng):
    """Examples of similar lengths together (little padding), the batches
    in a random order."""
    order = sorted(rng.permutation(len(encoded)),
                   key=lambda j: len(encoded[j][0]))
    starts = list(range(0, len(order), size))
    rng.shuffle(starts)
    for i in starts:
        chunk = [encoded[j] for j in order[i:i + size]]
        seq = max(len(t) for t, _, _ in chunk)
        tokens = torch.zeros(len(chunk), seq, dtype=torch.long)
        weight = torch.zeros(len(chunk), seq)
        for r, (t, start, action_end) in enumerate(chunk):
            tokens[r, :len(t)] = torch.tensor(t)
            weight[r, start - 1:len(t) - 1] = 1  # Predicting the answer,
            weight[r, start - 1:action_end - 1] = ACTION_WEIGHT  # its action.
        yield tokens, weight


def score_actions(model, sp, situations):
    """The action each situation's continuations score best."""
    out = []
    with torch.no_grad():
        for s in situations:
            prompt = S.prompt(s)
            p = [1] + sp.encode(prompt)
            seqs = [[1] + sp.encode(prompt + " %s\n" % a) for a in S.ACTIONS]
            seq = max(len(t) for t in seqs)
            tokens = torch.zeros(len(seqs), seq, dtype=torch.long)
            for r, t in enumerate(seqs):
                tokens[r, :len(t)] = torch.tensor(t)
            logp = torch.log_softmax(model(tokens), -1)
            best, best_score = None, -1e30
            for r, t in enumerate(seqs):
                score = sum(float(logp[r, i - 1, t[i]])
                            for i in range(len(p), len(t)))
                if score > best_score:
                    best, best_score = S.ACTIONS[r], score
            out.append(best)
    return out


def export(model, sp, path):
    c = model.c
    g = Gguf()
    g.key("general.architecture", "str", "llama")
    g.key("general.name", "str", "raftsql-hub-actions")
    g.key("llama.embedding_length", "u32", c["dim"])
    g.key("llama.feed_forward_length", "u32", c["hidden"])
    g.key("llama.block_count", "u32", c["layers"])
    g.key("llama.attention.head_count", "u32", c["heads"])
    g.key("llama.attention.head_count_kv", "u32", c["kv_heads"])
    g.key("llama.context_length", "u32", c["context"])
    g.key("llama.attention.layer_norm_rms_epsilon", "f32", c["eps"])
    g.key("llama.rope.freq_base", "f32", c["theta"])
    n = sp.get_piece_size()
    types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else
             5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 1
             for i in range(n)]
    g.key("tokenizer.ggml.model", "str", "llama")
    g.key("tokenizer.ggml.tokens", "strs",
          [sp.id_to_piece(i) for i in range(n)])
    g.key("tokenizer.ggml.scores", "f32s", [sp.get_score(i) for i in range(n)])
    g.key("tokenizer.ggml.token_type", "i32s", types)
    g.key("tokenizer.ggml.bos_token_id", "u32", 1)
    g.key("tokenizer.ggml.eos_token_id", "u32", 2)
    g.key("tokenizer.ggml.unknown_token_id", "u32", 0)

    def t(name, w):
        w = w.detach().float().contiguous()
        dims = list(reversed(w.shape))
        g.tensor(name, dims, "f32", w.numpy().astype("<f4").tobytes())

    t("token_embd.weight", model.embed.weight)
    t("output_norm.weight", model.norm)
    for i, m in enumerate(model.layers):
        p = "blk.%d." % i
        t(p + "attn_norm.weight", m.attn_norm)
        t(p + "attn_q.weight", m.q.weight)
        t(p + "attn_k.weight", m.k.weight)
        t(p + "attn_v.weight", m.v.weight)
        t(p + "attn_output.weight", m.o.weight)
        t(p + "ffn_norm.weight", m.ffn_norm)
        t(p + "ffn_gate.weight", m.gate.weight)
        t(p + "ffn_up.weight", m.up.weight)
        t(p + "ffn_down.weight", m.down.weight)
    with open(path, "wb") as f:
        f.write(g.bytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--examples", type=int, default=24000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--held_out", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    keep = random.Random(a.seed + 7)
    train = [s for s in S.dataset(a.seed, a.examples * 3)
             if S.expert(s)[0] != "none" or keep.random() < KEEP_NONE]
    train = train[:a.examples]
    held = S.dataset(a.seed + 1000, a.held_out)
    sp = train_tokenizer(["".join(S.example(s)) for s in train], a.seed)
    encoded = [encode(sp, s) for s in train]
    longest = max(len(t) for t, _, _ in encoded)
    assert longest <= CONFIG["context"], longest
    model = Llama(sp.get_piece_size(), CONFIG)
    params = sum(p.numel() for p in model.parameters())
    print("vocabulary %d, %d parameters, longest example %d tokens" %
          (sp.get_piece_size(), params, longest), flush=True)
    steps = a.epochs * math.ceil(len(encoded) / 64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    rng = np.random.default_rng(a.seed)
    start, step = time.time(), 0
    for epoch in range(a.epochs):
        for tokens, weight in batches(encoded, 64, rng):
            logits = model(tokens)[:, :-1]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                tokens[:, 1:].reshape(-1), reduction="none")
            w = weight[:, :-1].reshape(-1)
            loss = (loss * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print("epoch %d step %d/%d loss %.4f (%.0f s)" %
                      (epoch, step, steps, loss.item(), time.time() - start),
                      flush=True)
    model.eval()
    chosen = score_actions(model, sp, held)
    truth = [S.expert(s)[0] for s in held]
    rules = [S.rules_baseline(s) for s in held]
    acting = [i for i, t in enumerate(truth) if t != "none"]

    def acc(pred, idx):
        return sum(pred[i] == truth[i] for i in idx) / max(1, len(idx))

    every = range(len(held))
    print("held out %d: model %.3f (acting %.3f), rules %.3f (acting %.3f)" %
          (len(held), acc(chosen, every), acc(chosen, acting),
           acc(rules, every), acc(rules, acting)), flush=True)
    export(model, sp, a.out)


if __name__ == "__main__":
    main()
