// For the ai tools (evaluate and the reference checks), which stop on bad
// input rather than handle it: a whole file, and a reader of the
// little-endian records the reference scripts write.
#ifndef RAFTSQL_AI_TOOL_FILES_H_
#define RAFTSQL_AI_TOOL_FILES_H_

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "ai/gguf.h"

namespace raftsql::ai {

// The whole file at `path` (at most kMaxGgufFileBytes); the tool stops
// (exit 2) if it cannot be read.
inline std::string ReadFileOrExit(const char* path) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(path, kMaxGgufFileBytes);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str());
    std::exit(2);
  }
  return *std::move(bytes);
}

// Values in order from a file's bytes; the tool stops (exit 2) at a
// truncation.
class RecordReader {
 public:
  explicit RecordReader(std::string bytes) : bytes_(std::move(bytes)) {}
  template <typename T>
  T Take() {
    T v;
    Need(sizeof(T));
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string Bytes(size_t n) {
    Need(n);
    at_ += n;
    return bytes_.substr(at_ - n, n);
  }

 private:
  void Need(size_t n) {
    if (n > bytes_.size() - at_) {
      std::fprintf(stderr, "expected file is truncated\n");
      std::exit(2);
    }
  }
  std::string bytes_;
  size_t at_ = 0;
};

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_TOOL_FILES_H_
