// Checks the tokenizer against SentencePiece (tokenizer_reference.py): the
// same ids for every text, and each text decoded back from them.
//
// Usage: tokenizer_reference_check TOKENIZER.gguf EXPECTED
// Exits 1 if a text differs.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ai/tokenizer.h"

namespace raftsql::ai {
namespace {

// The whole file (the tool stops if it cannot read it).
std::string ReadFile(const char* path) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(path, kMaxGgufFileBytes);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str());
    std::exit(2);
  }
  return *std::move(bytes);
}

class Reader {
 public:
  explicit Reader(std::string bytes) : bytes_(std::move(bytes)) {}
  uint32_t U32() {
    uint32_t v;
    Need(4);
    std::memcpy(&v, bytes_.data() + at_, 4);
    at_ += 4;
    return v;
  }
  std::string Bytes(size_t n) {
    Need(n);
    at_ += n;
    return bytes_.substr(at_ - n, n);
  }

 private:
  void Need(size_t n) {
    if (at_ + n > bytes_.size()) {
      std::fprintf(stderr, "expected file is truncated\n");
      std::exit(2);
    }
  }
  std::string bytes_;
  size_t at_ = 0;
};

std::string Ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

int Main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER.gguf EXPECTED\n", argv[0]);
    return 2;
  }
  const std::string file = ReadFile(argv[1]);
  absl::StatusOr<GgufFile> gguf = ParseGguf(file);
  absl::StatusOr<Tokenizer> t = gguf.ok()
                                    ? Tokenizer::FromGguf(*gguf)
                                    : absl::StatusOr<Tokenizer>(gguf.status());
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    return 1;
  }
  Reader in(ReadFile(argv[2]));
  const uint32_t texts = in.U32();
  int wrong = 0;
  size_t tokens = 0;
  for (uint32_t i = 0; i < texts; ++i) {
    const std::string text = in.Bytes(in.U32());
    std::vector<int32_t> want(in.U32());
    for (int32_t& id : want) id = static_cast<int32_t>(in.U32());
    tokens += want.size();
    absl::StatusOr<std::vector<int32_t>> got = t->Encode(text, false);
    absl::StatusOr<std::string> back =
        got.ok() ? t->Decode(*got) : absl::StatusOr<std::string>("");
    if (!got.ok() || *got != want || !back.ok() || *back != text) {
      ++wrong;
      std::printf("\"%s\": sentencepiece %s, ours %s, decoded \"%s\"\n",
                  text.c_str(), Ids(want).c_str(),
                  got.ok() ? Ids(*got).c_str() : "(refused)",
                  back.ok() ? back->c_str() : "(refused)");
    }
  }
  std::printf("%s: %u texts (%zu tokens, vocabulary %zu): %d differ\n", argv[1],
              texts, tokens, t->size(), wrong);
  return wrong == 0 ? 0 : 1;
}

}  // namespace
}  // namespace raftsql::ai

int main(int argc, char** argv) { return raftsql::ai::Main(argc, argv); }
