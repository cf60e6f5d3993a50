// A small deterministic pseudo-random generator (SplitMix64 seeding a
// xoshiro256**). The core never uses a global source of randomness: whoever
// builds a Raft hands it a seed, so a run is a pure function of its inputs.
#ifndef RAFTSQL_CORE_PRNG_H_
#define RAFTSQL_CORE_PRNG_H_

#include <cstdint>

#include "core/check.h"

namespace raftsql::core {

// SplitMix64: advances `x` and returns a well-mixed 64-bit value of it
// (also a hash of a counter, as the simulator's signals use it).
inline uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Prng {
 public:
  explicit Prng(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& word : state_) word = SplitMix64(x);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). Precondition: bound > 0.
  uint64_t Uniform(uint64_t bound) {
    CHECK_GT(bound, 0u);
    // Lemire's multiply-shift; the tiny bias is irrelevant for timeouts and
    // fault schedules, and it keeps the draw count fixed (determinism).
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

  // Uniform in [lo, hi]. Precondition: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) {
    CHECK_LE(lo, hi);
    return lo + Uniform(hi - lo + 1);
  }

  // True with probability `p` (0 <= p <= 1).
  bool Chance(double p) {
    if (p <= 0) return false;
    return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p;
  }

  // A new generator whose stream is independent of this one's future draws:
  // used to give each component of a simulation its own sub-stream.
  Prng Split() { return Prng(Next() ^ 0x9e3779b97f4a7c15ull); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t state_[4];
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_PRNG_H_
