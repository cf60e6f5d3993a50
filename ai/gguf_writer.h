// Writes GGUF (version 3) files: typed metadata, then tensors, aligned.
// The runtime's tests build their models with it (random weights of any
// shape and type); the PyTorch reference test writes its own with a
// script, so that the two sides share no code.
#ifndef RAFTSQL_AI_GGUF_WRITER_H_
#define RAFTSQL_AI_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ai/gguf.h"

namespace raftsql::ai {

class GgufWriter {
 public:
  GgufWriter& Uint32(const std::string& key, uint32_t v);
  GgufWriter& Float32(const std::string& key, float v);
  GgufWriter& String(const std::string& key, const std::string& v);
  GgufWriter& Strings(const std::string& key,
                      const std::vector<std::string>& v);
  GgufWriter& Floats(const std::string& key, const std::vector<float>& v);
  GgufWriter& Int32s(const std::string& key, const std::vector<int32_t>& v);
  // `data` holds the tensor's values as `type` (GgmlBytes of its
  // elements); dims in ggml order (dims[0] varies fastest).
  GgufWriter& Tensor(const std::string& name, std::vector<uint64_t> dims,
                     GgmlType type, std::string data);
  // The file's bytes.
  std::string Finish() const;

 private:
  struct Pending {
    std::string name;
    std::vector<uint64_t> dims;
    GgmlType type;
    std::string data;
  };
  void Key(const std::string& key, uint32_t type);

  uint64_t keys_ = 0;
  std::string metadata_;
  std::vector<Pending> tensors_;
};

// `values` stored as `type` (Q8_0: a multiple of 32 values, each block
// scaled by its largest magnitude, as ggml quantizes).
std::string Encode(GgmlType type, const std::vector<float>& values);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_GGUF_WRITER_H_
