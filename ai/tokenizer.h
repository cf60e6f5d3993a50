// The TinyLLM runtime's tokenizer (issue 18, part 3): SentencePiece-style
// byte-pair encoding from a GGUF file's metadata (tokenizer.ggml.model
// "llama": pieces, their scores and types), as llama.cpp and SentencePiece
// encode: spaces become U+2581 ("▁"), one is put before the text, the text
// is split into UTF-8 characters, and the adjacent pair whose joined piece
// has the highest score is merged until none is a piece (the leftmost pair
// among equal scores). A character that is no piece becomes its bytes'
// <0xXX> pieces (byte fallback), else the unknown piece.
//
// Text comes from outside: at most kMaxTokenizeBytes, encoded in
// O(n log n); a vocabulary is checked when it is read.
#ifndef RAFTSQL_AI_TOKENIZER_H_
#define RAFTSQL_AI_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "ai/gguf.h"

namespace raftsql::ai {

inline constexpr size_t kMaxTokenizeBytes = 64 << 10;

class Tokenizer {
 public:
  // SentencePiece's piece types, as GGUF's tokenizer.ggml.token_type.
  enum Type : int32_t {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };

  static absl::StatusOr<Tokenizer> FromGguf(const GgufFile& file);

  // INVALID_ARGUMENT over kMaxTokenizeBytes.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_bos) const;
  // The text of `tokens` (control pieces give none; the space put before
  // the text is taken away again). INVALID_ARGUMENT for a token outside the
  // vocabulary.
  absl::StatusOr<std::string> Decode(std::span<const int32_t> tokens) const;

  size_t size() const { return pieces_.size(); }
  const std::string& piece(int32_t token) const { return pieces_[token]; }
  std::optional<int32_t> Find(std::string_view piece) const;
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }

 private:
  Tokenizer() = default;
  // Appends `symbol`'s token, or its bytes' (byte fallback), or unknown.
  void Emit(std::string_view symbol, std::vector<int32_t>* out) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  absl::flat_hash_map<std::string, int32_t> ids_;
  std::array<int32_t, 256> byte_ids_{};  // -1: no <0xXX> piece.
  int32_t bos_ = -1;
  int32_t eos_ = -1;
  int32_t unknown_ = -1;
  bool add_space_prefix_ = true;
};

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_TOKENIZER_H_
