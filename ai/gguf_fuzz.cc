// libFuzzer target: the GGUF loader takes any bytes: an error, never a
// crash or a read past the end, and what it accepts is consistent (every
// tensor within the file, aligned, sized for its shape and type). A file
// it accepts goes on to the model and tokenizer loaders; a model they
// accept computes a token's logits in a small session, a tokenizer
// encodes and decodes a text. Built and run by tests/fuzz_test.sh.
#include <cstdint>
#include <string_view>
#include <vector>

#include "ai/gguf.h"
#include "ai/llama.h"
#include "ai/tokenizer.h"
#include "core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<raftsql::ai::GgufFile> f = raftsql::ai::ParseGguf(bytes);
  if (!f.ok()) return 0;
  for (const raftsql::ai::GgufTensor& t : f->tensors) {
    CHECK_LE(t.offset + t.bytes, size);
    CHECK_EQ(t.offset % f->alignment, 0u);
    CHECK_EQ(t.bytes, raftsql::ai::GgmlBytes(t.type, t.elements()));
  }
  absl::StatusOr<raftsql::ai::Tokenizer> tokenizer =
      raftsql::ai::Tokenizer::FromGguf(*f);
  if (tokenizer.ok()) {
    absl::StatusOr<std::vector<int32_t>> ids =
        tokenizer->Encode("pump-3 temp\xc3\xa9rature 27.5", true);
    CHECK(ids.ok());
    CHECK(tokenizer->Decode(*ids).ok());
  }
  absl::StatusOr<std::unique_ptr<raftsql::ai::LlamaModel>> model =
      raftsql::ai::LlamaModel::FromGguf(*std::move(f), bytes);
  if (!model.ok()) return 0;
  absl::StatusOr<std::unique_ptr<raftsql::ai::LlamaSession>> session =
      raftsql::ai::LlamaSession::Create(**model, 2, 16 << 20);
  if (!session.ok()) return 0;
  std::vector<float> logits;
  const int32_t token = 0;
  CHECK((*session)->Forward({&token, 1}, false, &logits).ok());
  CHECK_EQ(logits.size(), (*model)->config().vocab);
  return 0;
}
