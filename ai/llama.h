// The TinyLLM runtime's model (issue 18, part 3): a Llama-architecture
// transformer read from a GGUF file (llama.cpp's tensor names and metadata
// keys), computed on the CPU with ai/ops.h: RMSNorm, rotary positions on
// adjacent pairs, grouped-query attention with a KV cache, SwiGLU. The
// weights stay in the caller's bytes (a mapped file); only the norms are
// copied, as floats.
//
// A model comes from outside: Load checks the architecture, every
// hyperparameter against a bound, and every tensor's presence, type and
// shape before anything reads it (INVALID_ARGUMENT naming what is wrong).
//
// A Session is one sequence: its KV cache (layers x context x kv_dim x 2
// floats, sized once) and its scratch buffers. Forward feeds tokens at the
// next positions, in batches of at most kPrefillBatch (a prompt's
// prefill reads each weight once per batch); Truncate goes back to an
// earlier position, keeping the cache before it, so that several
// continuations of one prompt are scored without recomputing the prompt.
//
// Thread-safety: a model is immutable and shared; a session is one
// thread's.
#ifndef RAFTSQL_AI_LLAMA_H_
#define RAFTSQL_AI_LLAMA_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ai/gguf.h"

namespace raftsql::ai {

// Bounds on what a model file may ask for.
inline constexpr uint64_t kMaxLlamaDim = 1 << 14;
inline constexpr uint64_t kMaxLlamaHidden = 1 << 16;
inline constexpr uint64_t kMaxLlamaLayers = 256;
inline constexpr uint64_t kMaxLlamaHeads = 256;
inline constexpr uint64_t kMaxLlamaVocab = 1 << 20;
inline constexpr uint64_t kMaxLlamaContext = 1 << 16;

struct LlamaConfig {
  uint64_t dim = 0;             // llama.embedding_length
  uint64_t hidden_dim = 0;      // llama.feed_forward_length
  uint64_t layers = 0;          // llama.block_count
  uint64_t heads = 0;           // llama.attention.head_count
  uint64_t kv_heads = 0;        // llama.attention.head_count_kv (else heads)
  uint64_t vocab = 0;           // token_embd.weight's rows
  uint64_t context = 0;         // llama.context_length
  float rms_eps = 1e-5f;        // llama.attention.layer_norm_rms_epsilon
  float rope_theta = 10000.0f;  // llama.rope.freq_base

  uint64_t head_dim() const { return dim / heads; }
  uint64_t kv_dim() const { return kv_heads * head_dim(); }
};

// A weight matrix of `rows` rows of `cols` values (GGUF dims {cols, rows}).
struct LlamaWeight {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;
  uint64_t rows = 0;
  uint64_t cols = 0;
};

class LlamaModel {
 public:
  // `bytes` is the whole GGUF file and must outlive the model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Load(
      std::string_view bytes);
  // The same for a file already parsed from `bytes`.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> FromGguf(
      GgufFile file, std::string_view bytes);

  const LlamaConfig& config() const { return config_; }
  const GgufFile& file() const { return file_; }
  // Whether the output matrix is the embedding's (no output.weight).
  bool tied_output() const { return output_.data == embedding_.data; }

 private:
  friend class LlamaSession;
  struct Layer {
    std::vector<float> attn_norm;
    LlamaWeight q, k, v, o;
    std::vector<float> ffn_norm;
    LlamaWeight gate, up, down;
  };

  LlamaModel() = default;

  GgufFile file_;
  LlamaConfig config_;
  LlamaWeight embedding_;  // vocab rows of dim.
  std::vector<Layer> layers_;
  std::vector<float> output_norm_;
  LlamaWeight output_;  // vocab rows of dim.
};

class LlamaSession {
 public:
  // Tokens a Forward computes together at most.
  static constexpr uint64_t kPrefillBatch = 32;

  // What a session's buffers may take by default.
  static constexpr uint64_t kMaxSessionBytes = 256 << 20;

  // A session of at most `context` positions (0: the model's context);
  // RESOURCE_EXHAUSTED if its KV cache and scratch need more than
  // `max_bytes` (the file's numbers never choose an allocation alone).
  static absl::StatusOr<std::unique_ptr<LlamaSession>> Create(
      const LlamaModel& model, uint64_t context = 0,
      uint64_t max_bytes = kMaxSessionBytes);
  // Bytes of a session's buffers.
  static uint64_t Bytes(const LlamaConfig& config, uint64_t context);
  LlamaSession(const LlamaSession&) = delete;
  LlamaSession& operator=(const LlamaSession&) = delete;

  // The position the next token takes (tokens fed so far).
  uint64_t position() const { return position_; }
  uint64_t context() const { return context_; }
  // Forgets the tokens from `position` on (position <= position()).
  void Truncate(uint64_t position);

  // Feeds `tokens` at position(), position() + 1, ...; `logits` gets, per
  // token (all_logits) or for the last only, the vocabulary's logits.
  // INVALID_ARGUMENT for a token outside the vocabulary, OUT_OF_RANGE past
  // the context; either way nothing is fed.
  absl::Status Forward(std::span<const int32_t> tokens, bool all_logits,
                       std::vector<float>* logits);

 private:
  LlamaSession(const LlamaModel& model, uint64_t context);
  // Feeds 1 to kPrefillBatch tokens; if `logits` is not null, the logits
  // of each (rows of vocab) or of the last only go there.
  void ForwardBatch(std::span<const int32_t> tokens, float* logits,
                    bool last_only);
  void Attention(size_t layer, size_t n);

  const LlamaModel& model_;
  const LlamaConfig& config_;
  const uint64_t context_;
  uint64_t position_ = 0;
  // Per layer: context_ rows of kv_dim, keys then values.
  std::vector<float> keys_;
  std::vector<float> values_;
  // Scratch, kPrefillBatch rows each.
  std::vector<float> x_, xb_, q_, k_, v_, att_out_, hb_, hb2_, scores_;
};

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_LLAMA_H_
