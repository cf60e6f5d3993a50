// GGUF (version 3), the file format llama.cpp and most small-model tools
// exchange: a header, typed key-value metadata, tensor descriptions, and the
// tensors' data, aligned. This is the TinyLLM runtime's loader (issue 18,
// part 3): it parses a file's bytes and checks everything before anything
// uses them, since a model file comes from outside: bad magic, another
// version, a tensor type the runtime does not compute (F32, F16, Q8_0 only),
// truncation, shapes that do not fit their data, overlapping or misaligned
// tensors, and absurd counts or sizes are each a clear INVALID_ARGUMENT,
// never a crash or an allocation the file's numbers chose.
//
// Little-endian only (as the format); the tensors stay in the caller's
// bytes (a mapped file), described by their offsets.
#ifndef RAFTSQL_AI_GGUF_H_
#define RAFTSQL_AI_GGUF_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace raftsql::ai {

// ggml's tensor types that the runtime computes.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8 };

// Bounds on what a file may ask of the loader.
inline constexpr uint64_t kMaxGgufTensors = 1 << 16;
inline constexpr uint64_t kMaxGgufKeys = 1 << 16;
inline constexpr uint64_t kMaxGgufStringBytes = 1 << 20;
inline constexpr uint64_t kMaxGgufArrayItems = 1 << 24;
inline constexpr uint32_t kMaxGgufDims = 4;
inline constexpr uint64_t kMaxGgufAlignment = 1 << 20;
// The largest model file read.
inline constexpr uint64_t kMaxGgufFileBytes = uint64_t{1} << 30;

struct GgufValue {
  // GGUF's value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
  // 7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64.
  uint32_t type = 0;
  uint64_t u = 0;  // Unsigned integers and bool.
  int64_t i = 0;   // Signed integers.
  double f = 0;    // Floats.
  std::string s;
  uint32_t item_type = 0;  // Arrays: their items' type.
  std::vector<GgufValue> items;
};

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] varies fastest.
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // From the start of the file.
  uint64_t bytes = 0;
  uint64_t elements() const;
};

struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensor> tensors;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // Where the tensors' data starts.

  const GgufTensor* Tensor(std::string_view name) const;
  // An unsigned integer value (any width), or INVALID_ARGUMENT naming the
  // key if it is missing or of another type.
  absl::StatusOr<uint64_t> Uint(const std::string& key) const;
  absl::StatusOr<double> Float(const std::string& key) const;
  absl::StatusOr<std::string> String(const std::string& key) const;
};

absl::StatusOr<GgufFile> ParseGguf(std::string_view bytes);

// The bytes of the file at `path`: NOT_FOUND if it cannot be opened,
// FAILED_PRECONDITION if it cannot be read, INVALID_ARGUMENT if it holds
// more than `max_bytes` (it reads no further).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          uint64_t max_bytes);

// Bytes of `elements` values of `type` (Q8_0: blocks of 32, each a half
// scale and 32 int8); 0 if `elements` cannot be stored as `type`.
uint64_t GgmlBytes(GgmlType type, uint64_t elements);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_GGUF_H_
