#include "ai/llama_testing.h"

#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace raftsql::ai {

GgufWriter RandomLlamaWriter(const RandomLlamaOptions& o) {
  const LlamaConfig& c = o.config;
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0, 1);
  auto values = [&](uint64_t n, float scale) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng) * scale;
    return v;
  };
  GgufWriter w;
  w.String("general.architecture", o.architecture)
      .Uint32("llama.embedding_length", static_cast<uint32_t>(c.dim))
      .Uint32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim))
      .Uint32("llama.block_count", static_cast<uint32_t>(c.layers))
      .Uint32("llama.attention.head_count", static_cast<uint32_t>(c.heads))
      .Uint32("llama.attention.head_count_kv",
              static_cast<uint32_t>(c.kv_heads))
      .Uint32("llama.context_length", static_cast<uint32_t>(c.context))
      .Float32("llama.attention.layer_norm_rms_epsilon", c.rms_eps)
      .Float32("llama.rope.freq_base", c.rope_theta);
  auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    if (name == o.drop_tensor) return;
    std::vector<uint64_t> dims = {cols, rows};
    if (name == o.transpose_tensor) dims = {rows, cols};
    w.Tensor(
        name, dims, o.type,
        Encode(o.type, values(rows * cols,
                              1.0f / std::sqrt(static_cast<float>(cols)))));
  };
  auto norm = [&](const std::string& name) {
    if (name == o.drop_tensor) return;
    std::vector<float> v = values(c.dim, 0.1f);
    for (float& x : v) x += 1;
    w.Tensor(name, {c.dim}, GgmlType::kF32, Encode(GgmlType::kF32, v));
  };
  matrix("token_embd.weight", c.vocab, c.dim);
  norm("output_norm.weight");
  if (!o.tied_output) matrix("output.weight", c.vocab, c.dim);
  for (uint64_t i = 0; i < c.layers; ++i) {
    const std::string p = absl::StrCat("blk.", i, ".");
    norm(p + "attn_norm.weight");
    matrix(p + "attn_q.weight", c.dim, c.dim);
    matrix(p + "attn_k.weight", c.kv_dim(), c.dim);
    matrix(p + "attn_v.weight", c.kv_dim(), c.dim);
    matrix(p + "attn_output.weight", c.dim, c.dim);
    norm(p + "ffn_norm.weight");
    matrix(p + "ffn_gate.weight", c.hidden_dim, c.dim);
    matrix(p + "ffn_up.weight", c.hidden_dim, c.dim);
    matrix(p + "ffn_down.weight", c.dim, c.hidden_dim);
  }
  return w;
}

std::string RandomLlama(const RandomLlamaOptions& o) {
  return RandomLlamaWriter(o).Finish();
}

std::string RandomLlamaWithVocabulary(uint64_t vocab, uint64_t seed) {
  LlamaConfig c;
  c.dim = 32;
  c.hidden_dim = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = vocab;
  c.context = 256;
  GgufWriter w = RandomLlamaWriter({.config = c, .seed = seed});
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(absl::StrFormat("<0x%02X>", b));
    types.push_back(6);
  }
  pieces.push_back("\xe2\x96\x81");
  types.push_back(1);
  for (int i = 0; pieces.size() < vocab; ++i) {
    pieces.push_back(absl::StrCat("p", i));
    types.push_back(1);
  }
  w.String("tokenizer.ggml.model", "llama")
      .Strings("tokenizer.ggml.tokens", pieces)
      .Floats("tokenizer.ggml.scores", std::vector<float>(vocab, -1))
      .Int32s("tokenizer.ggml.token_type", types)
      .Uint32("tokenizer.ggml.bos_token_id", 1)
      .Uint32("tokenizer.ggml.eos_token_id", 2);
  return w.Finish();
}

}  // namespace raftsql::ai
