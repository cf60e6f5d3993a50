#include "ai/sampler.h"

#include <algorithm>
#include <cmath>

namespace raftsql::ai {

int32_t Greedy(std::span<const float> logits) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (best < 0 || logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

Sampler::Sampler(uint64_t seed, float temperature, float top_p)
    : prng_(seed),
      temperature_(temperature),
      top_p_(top_p > 0 && top_p <= 1 ? top_p : 1) {}

int32_t Sampler::Sample(std::span<const float> logits) {
  if (temperature_ <= 0 || logits.empty()) return Greedy(logits);
  const float max = *std::max_element(logits.begin(), logits.end());
  probs_.resize(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float p = std::exp((logits[i] - max) / temperature_);
    probs_[i] = {p, static_cast<int32_t>(i)};
    sum += p;
  }
  // Likeliest first; among equals the lower index, so the order is fixed.
  std::sort(probs_.begin(), probs_.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  size_t keep = 0;
  double kept = 0;
  while (keep < probs_.size() && (keep == 0 || kept < top_p_ * sum)) {
    kept += probs_[keep++].first;
  }
  // A uniform draw in [0, kept), 53 bits.
  const double r = static_cast<double>(prng_.Next() >> 11) * 0x1.0p-53 * kept;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs_[i].first;
    if (r < cumulative) return probs_[i].second;
  }
  return probs_[keep - 1].second;
}

}  // namespace raftsql::ai
