// Checks the tokenizer against SentencePiece (tokenizer_reference.py): the
// same ids for every text, and each text decoded back from them.
//
// Usage: tokenizer_reference_check TOKENIZER.gguf EXPECTED
// Exits 1 if a text differs.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ai/tokenizer.h"
#include "ai/tool_files.h"

namespace raftsql::ai {
namespace {

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
  const std::string file = ReadFileOrExit(argv[1]);
  absl::StatusOr<GgufFile> gguf = ParseGguf(file);
  absl::StatusOr<Tokenizer> t = gguf.ok()
                                    ? Tokenizer::FromGguf(*gguf)
                                    : absl::StatusOr<Tokenizer>(gguf.status());
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    return 1;
  }
  RecordReader in(ReadFileOrExit(argv[2]));
  const uint32_t texts = in.Take<uint32_t>();
  int wrong = 0;
  size_t tokens = 0;
  for (uint32_t i = 0; i < texts; ++i) {
    const std::string text = in.Bytes(in.Take<uint32_t>());
    std::vector<int32_t> want(in.Take<uint32_t>());
    for (int32_t& id : want) id = static_cast<int32_t>(in.Take<uint32_t>());
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
