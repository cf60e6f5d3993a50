// libFuzzer target: the GGUF loader takes any bytes: an error, never a
// crash or a read past the end, and what it accepts is consistent (every
// tensor within the file, aligned, sized for its shape and type). Built and
// run by tests/fuzz_test.sh.
#include <cstdint>
#include <string_view>

#include "ai/gguf.h"
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
  return 0;
}
