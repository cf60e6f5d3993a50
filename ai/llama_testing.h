// Random Llama models in GGUF for the runtime's tests: any shape, any
// weight type, the output matrix shared with the embedding or not, and a
// small vocabulary of single letters.
#ifndef RAFTSQL_AI_LLAMA_TESTING_H_
#define RAFTSQL_AI_LLAMA_TESTING_H_

#include <cstdint>
#include <string>

#include "ai/gguf.h"
#include "ai/gguf_writer.h"
#include "ai/llama.h"

namespace raftsql::ai {

struct RandomLlamaOptions {
  LlamaConfig config;
  GgmlType type = GgmlType::kF32;  // Of the matrices; norms are F32.
  bool tied_output = true;
  uint64_t seed = 1;
  // Bad models: another architecture; a tensor left out; a matrix
  // written with its dimensions swapped.
  std::string architecture = "llama";
  std::string drop_tensor;
  std::string transpose_tensor;
};

// The writer with the model's metadata and tensors (more may be added).
GgufWriter RandomLlamaWriter(const RandomLlamaOptions& o);
std::string RandomLlama(const RandomLlamaOptions& o);
// A small random model (2 layers, grouped-query) whose file also holds a
// vocabulary of `vocab` pieces (at least 260): the special pieces, the
// 256 bytes, "▁" and letters.
std::string RandomLlamaWithVocabulary(uint64_t vocab, uint64_t seed = 1);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_LLAMA_TESTING_H_
