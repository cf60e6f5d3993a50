#include "ai/tokenizer.h"

#include <queue>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace raftsql::ai {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581

absl::Status Invalid(std::string why) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", why));
}

// Debian's absl has its own string_view, which its hash maps look up.
absl::string_view View(std::string_view v) { return {v.data(), v.size()}; }

// Bytes of the UTF-8 character starting with `lead` (1 for a stray byte).
size_t CharBytes(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xe) return 3;
  if ((lead >> 3) == 0x1e) return 4;
  return 1;
}

// An optional token id: -1 if absent; INVALID_ARGUMENT if out of range.
absl::StatusOr<int32_t> OptionalId(const GgufFile& f, const std::string& key,
                                   size_t vocab) {
  if (f.metadata.find(key) == f.metadata.end()) return -1;
  absl::StatusOr<uint64_t> id = f.Uint(key);
  if (!id.ok()) return id.status();
  if (*id >= vocab) {
    return Invalid(absl::StrCat(key, " ", *id, " is outside the vocabulary"));
  }
  return static_cast<int32_t>(*id);
}

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::FromGguf(const GgufFile& f) {
  absl::StatusOr<std::string> model = f.String("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  if (*model != "llama") {
    return Invalid(absl::StrCat("model \"", *model, "\", not llama"));
  }
  auto array = [&](const std::string& key,
                   uint32_t type) -> absl::StatusOr<const GgufValue*> {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end()) return nullptr;
    if (it->second.type != 9 || it->second.item_type != type) {
      return Invalid(absl::StrCat(key, " is not an array of type ", type));
    }
    return &it->second;
  };
  absl::StatusOr<const GgufValue*> tokens = array("tokenizer.ggml.tokens", 8);
  if (!tokens.ok()) return tokens.status();
  if (*tokens == nullptr || (*tokens)->items.empty()) {
    return Invalid("no tokenizer.ggml.tokens");
  }
  const size_t n = (*tokens)->items.size();
  absl::StatusOr<const GgufValue*> scores = array("tokenizer.ggml.scores", 6);
  if (!scores.ok()) return scores.status();
  absl::StatusOr<const GgufValue*> types =
      array("tokenizer.ggml.token_type", 5);
  if (!types.ok()) return types.status();
  if (*scores != nullptr && (*scores)->items.size() != n) {
    return Invalid(
        absl::StrCat((*scores)->items.size(), " scores for ", n, " tokens"));
  }
  if (*types != nullptr && (*types)->items.size() != n) {
    return Invalid(
        absl::StrCat((*types)->items.size(), " types for ", n, " tokens"));
  }
  Tokenizer t;
  t.byte_ids_.fill(-1);
  t.pieces_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& piece = (*tokens)->items[i].s;
    t.pieces_.push_back(piece);
    t.scores_.push_back(
        *scores != nullptr ? static_cast<float>((*scores)->items[i].f) : 0.0f);
    const int32_t type = *types != nullptr
                             ? static_cast<int32_t>((*types)->items[i].i)
                             : kNormal;
    t.types_.push_back(type);
    if (type == kByte) {
      unsigned int byte = 0;
      if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 &&
          piece[5] == '>' && absl::SimpleHexAtoi(piece.substr(3, 2), &byte)) {
        t.byte_ids_[byte] = static_cast<int32_t>(i);
      } else {
        return Invalid(
            absl::StrCat("byte token ", i, " is \"", piece, "\", not <0xXX>"));
      }
    }
    // A piece listed twice keeps its first id, as SentencePiece does.
    t.ids_.emplace(piece, static_cast<int32_t>(i));
  }
  absl::StatusOr<int32_t> id = OptionalId(f, "tokenizer.ggml.bos_token_id", n);
  if (!id.ok()) return id.status();
  t.bos_ = *id;
  if (!(id = OptionalId(f, "tokenizer.ggml.eos_token_id", n)).ok()) {
    return id.status();
  }
  t.eos_ = *id;
  if (!(id = OptionalId(f, "tokenizer.ggml.unknown_token_id", n)).ok()) {
    return id.status();
  }
  t.unknown_ = *id;
  auto prefix = f.metadata.find("tokenizer.ggml.add_space_prefix");
  if (prefix != f.metadata.end()) {
    if (prefix->second.type != 7) {
      return Invalid("tokenizer.ggml.add_space_prefix is not a bool");
    }
    t.add_space_prefix_ = prefix->second.u != 0;
  }
  return t;
}

std::optional<int32_t> Tokenizer::Find(std::string_view piece) const {
  auto it = ids_.find(View(piece));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_bos) const {
  if (text.size() > kMaxTokenizeBytes) {
    return Invalid(absl::StrCat("text of ", text.size(), " bytes, over ",
                                kMaxTokenizeBytes));
  }
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  if (text.empty()) return out;
  std::string s;
  s.reserve(text.size() * 3 + 3);
  if (add_space_prefix_) s += kSpace;
  for (char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s += c;
    }
  }
  // Symbols: spans of `s` in a list; a merged-away one has len 0.
  struct Symbol {
    size_t at, len;
    int prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t at = 0; at < s.size();) {
    const size_t len = std::min(CharBytes(s[at]), s.size() - at);
    const int i = static_cast<int>(symbols.size());
    symbols.push_back({at, len, i - 1, i + 1});
    at += len;
  }
  symbols.back().next = -1;
  struct Bigram {
    float score;
    int left;
    size_t len;  // Of the joined piece when it was queued.
    bool operator<(const Bigram& o) const {
      // The priority queue's top: the highest score, then the leftmost.
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::priority_queue<Bigram> queue;
  auto try_pair = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[a.next];
    auto it = ids_.find(View(std::string_view(s).substr(a.at, a.len + b.len)));
    if (it == ids_.end() || types_[it->second] == kUnused) return;
    queue.push({scores_[it->second], left, a.len + b.len});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) try_pair(i);
  while (!queue.empty()) {
    const Bigram top = queue.top();
    queue.pop();
    Symbol& a = symbols[top.left];
    if (a.len == 0 || a.next < 0) continue;
    Symbol& b = symbols[a.next];
    if (a.len + b.len != top.len) continue;  // Either side changed since.
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (a.next >= 0) symbols[a.next].prev = top.left;
    try_pair(a.prev);
    try_pair(top.left);
  }
  for (int i = 0; i >= 0; i = symbols[i].next) {
    Emit(std::string_view(s).substr(symbols[i].at, symbols[i].len), &out);
  }
  return out;
}

void Tokenizer::Emit(std::string_view symbol, std::vector<int32_t>* out) const {
  if (auto it = ids_.find(View(symbol)); it != ids_.end()) {
    out->push_back(it->second);
    return;
  }
  for (unsigned char c : symbol) {
    if (byte_ids_[c] >= 0) {
      out->push_back(byte_ids_[c]);
    } else if (unknown_ >= 0) {
      out->push_back(unknown_);
      return;  // One unknown for the character.
    }
  }
}

absl::StatusOr<std::string> Tokenizer::Decode(
    std::span<const int32_t> tokens) const {
  std::string out;
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<size_t>(t) >= pieces_.size()) {
      return Invalid(absl::StrCat("token ", t, " is outside the vocabulary"));
    }
    const int32_t type = types_[t];
    if (type == kControl) continue;
    if (type == kByte) {
      unsigned int byte = 0;
      (void)absl::SimpleHexAtoi(pieces_[t].substr(3, 2), &byte);
      out.push_back(static_cast<char>(byte));
      continue;
    }
    const std::string& p = pieces_[t];
    for (size_t at = 0; at < p.size();) {
      if (p.compare(at, kSpace.size(), kSpace) == 0) {
        out += ' ';
        at += kSpace.size();
      } else {
        out += p[at++];
      }
    }
  }
  if (add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace raftsql::ai
