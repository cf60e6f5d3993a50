#include "ai/llama.h"

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ai/ops.h"

namespace raftsql::ai {
namespace {

absl::Status Invalid(std::string why) {
  return absl::InvalidArgumentError(absl::StrCat("model: ", why));
}

std::string Shape(const std::vector<uint64_t>& dims) {
  return absl::StrCat("{", absl::StrJoin(dims, ", "), "}");
}

// A required count in [1, max].
absl::StatusOr<uint64_t> Count(const GgufFile& f, const std::string& key,
                               uint64_t max) {
  absl::StatusOr<uint64_t> v = f.Uint(key);
  if (!v.ok()) return v.status();
  if (*v == 0 || *v > max) {
    return Invalid(absl::StrCat(key, " is ", *v, ", not in [1, ", max, "]"));
  }
  return *v;
}

// An optional positive float, `fallback` if absent.
absl::StatusOr<float> PositiveFloat(const GgufFile& f, const std::string& key,
                                    float fallback) {
  if (f.metadata.find(key) == f.metadata.end()) return fallback;
  absl::StatusOr<double> v = f.Float(key);
  if (!v.ok()) return v.status();
  if (!(*v > 0) || !std::isfinite(*v)) {
    return Invalid(absl::StrCat(key, " is ", *v, ", not a positive number"));
  }
  return static_cast<float>(*v);
}

absl::StatusOr<LlamaWeight> Matrix(const GgufFile& f, std::string_view bytes,
                                   const std::string& name, uint64_t rows,
                                   uint64_t cols) {
  const GgufTensor* t = f.Tensor(name);
  if (t == nullptr) return Invalid(absl::StrCat("no tensor ", name));
  if (t->dims != std::vector<uint64_t>{cols, rows}) {
    return Invalid(absl::StrCat(name, " has shape ", Shape(t->dims), ", not {",
                                cols, ", ", rows, "}"));
  }
  const char* data = bytes.data() + t->offset;
  if (t->type == GgmlType::kF32 &&
      reinterpret_cast<uintptr_t>(data) % alignof(float) != 0) {
    return Invalid(absl::StrCat(name, "'s floats are not aligned in memory"));
  }
  return LlamaWeight{t->type, data, rows, cols};
}

absl::StatusOr<std::vector<float>> Vector(const GgufFile& f,
                                          std::string_view bytes,
                                          const std::string& name, uint64_t n) {
  const GgufTensor* t = f.Tensor(name);
  if (t == nullptr) return Invalid(absl::StrCat("no tensor ", name));
  if (t->dims != std::vector<uint64_t>{n}) {
    return Invalid(
        absl::StrCat(name, " has shape ", Shape(t->dims), ", not {", n, "}"));
  }
  std::vector<float> out(n);
  Dequantize(t->type, bytes.data() + t->offset, n, out.data());
  return out;
}

absl::StatusOr<LlamaConfig> ReadConfig(const GgufFile& f) {
  absl::StatusOr<std::string> arch = f.String("general.architecture");
  if (!arch.ok()) return arch.status();
  if (*arch != "llama") {
    return Invalid(absl::StrCat("architecture \"", *arch, "\", not llama"));
  }
  LlamaConfig c;
  absl::StatusOr<uint64_t> v = Count(f, "llama.embedding_length", kMaxLlamaDim);
  if (!v.ok()) return v.status();
  c.dim = *v;
  if (!(v = Count(f, "llama.feed_forward_length", kMaxLlamaHidden)).ok()) {
    return v.status();
  }
  c.hidden_dim = *v;
  if (!(v = Count(f, "llama.block_count", kMaxLlamaLayers)).ok()) {
    return v.status();
  }
  c.layers = *v;
  if (!(v = Count(f, "llama.attention.head_count", kMaxLlamaHeads)).ok()) {
    return v.status();
  }
  c.heads = *v;
  c.kv_heads = c.heads;
  if (f.metadata.count("llama.attention.head_count_kv") != 0) {
    if (!(v = Count(f, "llama.attention.head_count_kv", c.heads)).ok()) {
      return v.status();
    }
    c.kv_heads = *v;
  }
  if (!(v = Count(f, "llama.context_length", kMaxLlamaContext)).ok()) {
    return v.status();
  }
  c.context = *v;
  absl::StatusOr<float> x =
      PositiveFloat(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (!x.ok()) return x.status();
  c.rms_eps = *x;
  if (!(x = PositiveFloat(f, "llama.rope.freq_base", 10000.0f)).ok()) {
    return x.status();
  }
  c.rope_theta = *x;
  if (c.dim % c.heads != 0 || c.head_dim() % 2 != 0) {
    return Invalid(absl::StrCat("embedding length ", c.dim, " is not ", c.heads,
                                " heads of an even size"));
  }
  if (c.heads % c.kv_heads != 0) {
    return Invalid(absl::StrCat(c.heads, " heads do not share ", c.kv_heads,
                                " key-value heads evenly"));
  }
  if (f.metadata.count("llama.rope.dimension_count") != 0) {
    absl::StatusOr<uint64_t> rope = f.Uint("llama.rope.dimension_count");
    if (!rope.ok()) return rope.status();
    if (*rope != c.head_dim()) {
      return Invalid(absl::StrCat("rotary dimensions ", *rope,
                                  " are not the head size ", c.head_dim()));
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(
    std::string_view bytes) {
  absl::StatusOr<GgufFile> file = ParseGguf(bytes);
  if (!file.ok()) return file.status();
  return FromGguf(*std::move(file), bytes);
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromGguf(
    GgufFile file, std::string_view bytes) {
  std::unique_ptr<LlamaModel> m(new LlamaModel);
  absl::StatusOr<LlamaConfig> config = ReadConfig(file);
  if (!config.ok()) return config.status();
  LlamaConfig& c = m->config_ = *config;
  const GgufTensor* embd = file.Tensor("token_embd.weight");
  if (embd == nullptr) return Invalid("no tensor token_embd.weight");
  if (embd->dims.size() != 2 || embd->dims[1] == 0 ||
      embd->dims[1] > kMaxLlamaVocab) {
    return Invalid(absl::StrCat(
        "token_embd.weight has shape ", Shape(embd->dims), ", not {", c.dim,
        ", vocabulary of at most ", kMaxLlamaVocab, "}"));
  }
  c.vocab = embd->dims[1];
  // Each check names its tensor; the first failure is the answer.
  absl::Status bad;
  auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    absl::StatusOr<LlamaWeight> w = Matrix(file, bytes, name, rows, cols);
    if (!w.ok() && bad.ok()) bad = w.status();
    return w.ok() ? *w : LlamaWeight{};
  };
  auto vector = [&](const std::string& name, uint64_t n) {
    absl::StatusOr<std::vector<float>> v = Vector(file, bytes, name, n);
    if (!v.ok() && bad.ok()) bad = v.status();
    return v.ok() ? *std::move(v) : std::vector<float>{};
  };
  m->embedding_ = matrix("token_embd.weight", c.vocab, c.dim);
  m->output_norm_ = vector("output_norm.weight", c.dim);
  m->output_ = file.Tensor("output.weight") != nullptr
                   ? matrix("output.weight", c.vocab, c.dim)
                   : m->embedding_;
  m->layers_.resize(c.layers);
  for (uint64_t i = 0; i < c.layers && bad.ok(); ++i) {
    const std::string p = absl::StrCat("blk.", i, ".");
    Layer& l = m->layers_[i];
    l.attn_norm = vector(p + "attn_norm.weight", c.dim);
    l.q = matrix(p + "attn_q.weight", c.dim, c.dim);
    l.k = matrix(p + "attn_k.weight", c.kv_dim(), c.dim);
    l.v = matrix(p + "attn_v.weight", c.kv_dim(), c.dim);
    l.o = matrix(p + "attn_output.weight", c.dim, c.dim);
    l.ffn_norm = vector(p + "ffn_norm.weight", c.dim);
    l.gate = matrix(p + "ffn_gate.weight", c.hidden_dim, c.dim);
    l.up = matrix(p + "ffn_up.weight", c.hidden_dim, c.dim);
    l.down = matrix(p + "ffn_down.weight", c.dim, c.hidden_dim);
  }
  if (!bad.ok()) return bad;
  m->file_ = std::move(file);
  return m;
}

uint64_t LlamaSession::Bytes(const LlamaConfig& c, uint64_t context) {
  // Bounded by the loader's limits: no product overflows.
  const uint64_t cache = 2 * c.layers * context * c.kv_dim();
  const uint64_t scratch =
      kPrefillBatch * (4 * c.dim + 2 * c.kv_dim() + 2 * c.hidden_dim) + context;
  return (cache + scratch) * sizeof(float);
}

absl::StatusOr<std::unique_ptr<LlamaSession>> LlamaSession::Create(
    const LlamaModel& model, uint64_t context, uint64_t max_bytes) {
  const LlamaConfig& c = model.config();
  context = context == 0 ? c.context : std::min(context, c.context);
  const uint64_t bytes = Bytes(c, context);
  if (bytes > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a session of ", context, " positions needs ", bytes,
                     " bytes, over the bound of ", max_bytes));
  }
  return std::unique_ptr<LlamaSession>(new LlamaSession(model, context));
}

LlamaSession::LlamaSession(const LlamaModel& model, uint64_t context)
    : model_(model), config_(model.config()), context_(context) {
  const LlamaConfig& c = config_;
  keys_.resize(c.layers * context_ * c.kv_dim());
  values_.resize(keys_.size());
  const uint64_t b = kPrefillBatch;
  x_.resize(b * c.dim);
  xb_.resize(b * c.dim);
  q_.resize(b * c.dim);
  k_.resize(b * c.kv_dim());
  v_.resize(b * c.kv_dim());
  att_out_.resize(b * c.dim);
  hb_.resize(b * c.hidden_dim);
  hb2_.resize(b * c.hidden_dim);
  scores_.resize(context_);
}

void LlamaSession::Truncate(uint64_t position) {
  if (position < position_) position_ = position;
}

absl::Status LlamaSession::Forward(std::span<const int32_t> tokens,
                                   bool all_logits,
                                   std::vector<float>* logits) {
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<uint64_t>(t) >= config_.vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token ", t, " is not in the vocabulary of ", config_.vocab));
    }
  }
  if (tokens.size() > context_ - position_) {
    return absl::OutOfRangeError(
        absl::StrCat(tokens.size(), " tokens at position ", position_,
                     " do not fit the context of ", context_));
  }
  const uint64_t vocab = config_.vocab;
  logits->assign(
      all_logits ? tokens.size() * vocab : (tokens.empty() ? 0 : vocab), 0.0f);
  for (size_t at = 0; at < tokens.size(); at += kPrefillBatch) {
    const size_t n = std::min<size_t>(kPrefillBatch, tokens.size() - at);
    const bool last = at + n == tokens.size();
    if (all_logits) {
      ForwardBatch(tokens.subspan(at, n), logits->data() + at * vocab,
                   /*last_only=*/false);
    } else {
      ForwardBatch(tokens.subspan(at, n), last ? logits->data() : nullptr,
                   /*last_only=*/true);
    }
  }
  return absl::OkStatus();
}

void LlamaSession::ForwardBatch(std::span<const int32_t> tokens, float* logits,
                                bool last_only) {
  const LlamaConfig& c = config_;
  const size_t n = tokens.size();
  const size_t dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim;
  const LlamaWeight& embd = model_.embedding_;
  const size_t embd_row = RowBytes(embd.type, dim);
  for (size_t i = 0; i < n; ++i) {
    Dequantize(embd.type,
               static_cast<const uint8_t*>(embd.data) + tokens[i] * embd_row,
               dim, &x_[i * dim]);
  }
  for (size_t l = 0; l < c.layers; ++l) {
    const LlamaModel::Layer& w = model_.layers_[l];
    for (size_t i = 0; i < n; ++i) {
      RmsNorm(&x_[i * dim], w.attn_norm.data(), dim, c.rms_eps, &xb_[i * dim]);
    }
    MatMul(w.q.type, w.q.data, xb_.data(), n, dim, dim, q_.data());
    MatMul(w.k.type, w.k.data, xb_.data(), n, kv_dim, dim, k_.data());
    MatMul(w.v.type, w.v.data, xb_.data(), n, kv_dim, dim, v_.data());
    for (size_t i = 0; i < n; ++i) {
      const size_t pos = position_ + i;
      Rope(&q_[i * dim], c.heads, c.head_dim(), pos, c.rope_theta);
      Rope(&k_[i * kv_dim], c.kv_heads, c.head_dim(), pos, c.rope_theta);
      const size_t at = (l * context_ + pos) * kv_dim;
      std::memcpy(&keys_[at], &k_[i * kv_dim], kv_dim * sizeof(float));
      std::memcpy(&values_[at], &v_[i * kv_dim], kv_dim * sizeof(float));
    }
    Attention(l, n);
    MatMul(w.o.type, w.o.data, att_out_.data(), n, dim, dim, xb_.data());
    for (size_t i = 0; i < n * dim; ++i) x_[i] += xb_[i];
    for (size_t i = 0; i < n; ++i) {
      RmsNorm(&x_[i * dim], w.ffn_norm.data(), dim, c.rms_eps, &xb_[i * dim]);
    }
    MatMul(w.gate.type, w.gate.data, xb_.data(), n, hidden, dim, hb_.data());
    MatMul(w.up.type, w.up.data, xb_.data(), n, hidden, dim, hb2_.data());
    for (size_t i = 0; i < n * hidden; ++i) hb_[i] = Silu(hb_[i]) * hb2_[i];
    MatMul(w.down.type, w.down.data, hb_.data(), n, dim, hidden, xb_.data());
    for (size_t i = 0; i < n * dim; ++i) x_[i] += xb_[i];
  }
  position_ += n;
  if (logits == nullptr) return;
  const LlamaWeight& out = model_.output_;
  const size_t first = last_only ? n - 1 : 0;
  for (size_t i = first; i < n; ++i) {
    RmsNorm(&x_[i * dim], model_.output_norm_.data(), dim, c.rms_eps,
            &xb_[i * dim]);
  }
  MatMul(out.type, out.data, &xb_[first * dim], n - first, c.vocab, dim,
         logits);
}

void LlamaSession::Attention(size_t layer, size_t n) {
  const LlamaConfig& c = config_;
  const size_t dim = c.dim, kv_dim = c.kv_dim(), hd = c.head_dim();
  const size_t group = c.heads / c.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* keys = &keys_[layer * context_ * kv_dim];
  const float* values = &values_[layer * context_ * kv_dim];
  for (size_t i = 0; i < n; ++i) {
    const size_t pos = position_ + i;
    for (size_t h = 0; h < c.heads; ++h) {
      const float* q = &q_[i * dim + h * hd];
      const size_t kv = (h / group) * hd;
      for (size_t t = 0; t <= pos; ++t) {
        const float* k = keys + t * kv_dim + kv;
        float s = 0;
        for (size_t d = 0; d < hd; ++d) s += q[d] * k[d];
        scores_[t] = s * scale;
      }
      Softmax(scores_.data(), pos + 1);
      float* out = &att_out_[i * dim + h * hd];
      std::fill(out, out + hd, 0.0f);
      for (size_t t = 0; t <= pos; ++t) {
        const float* v = values + t * kv_dim + kv;
        const float a = scores_[t];
        for (size_t d = 0; d < hd; ++d) out[d] += a * v[d];
      }
    }
  }
}

}  // namespace raftsql::ai
