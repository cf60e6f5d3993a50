// Choosing the next token from a model's logits: greedy, or sampled with
// a temperature and a nucleus (top-p) from a seeded generator, so that a
// run is a function of its seed.
#ifndef RAFTSQL_AI_SAMPLER_H_
#define RAFTSQL_AI_SAMPLER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "core/prng.h"

namespace raftsql::ai {

// The index of the largest logit (the lowest index among equals); -1 for
// none.
int32_t Greedy(std::span<const float> logits);

class Sampler {
 public:
  // temperature <= 0: greedy. top_p in (0, 1]: the smallest set of the
  // likeliest tokens whose probabilities reach it.
  Sampler(uint64_t seed, float temperature, float top_p);
  int32_t Sample(std::span<const float> logits);

 private:
  core::Prng prng_;
  const float temperature_;
  const float top_p_;
  std::vector<std::pair<float, int32_t>> probs_;  // Scratch.
};

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_SAMPLER_H_
