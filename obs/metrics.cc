#include "obs/metrics.h"

#include <cmath>

namespace raftsql::obs {

double Histogram::UpperBound(size_t i) { return 50e-6 * std::ldexp(1.0, i); }

void Histogram::Observe(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN and negatives: the first bucket.
  size_t i = 0;
  while (i < kBounds && seconds > UpperBound(i)) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e9)),
                    std::memory_order_relaxed);
}

Histogram::Counts Histogram::Read() const {
  Counts c;
  for (size_t i = 0; i <= kBounds; ++i) {
    c.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    c.count += c.buckets[i];
  }
  c.sum_seconds =
      static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return c;
}

void RequestMetrics::Record(const std::string& protocol,
                            const std::string& method, const std::string& code,
                            double seconds) {
  Slot(protocol, method, code).Observe(seconds);
}

Histogram& RequestMetrics::Slot(const std::string& protocol,
                                const std::string& method,
                                const std::string& code) {
  std::lock_guard<std::mutex> l(mu_);
  return requests_[Key{protocol, method, code}];
}

std::map<RequestMetrics::Key, Histogram::Counts> RequestMetrics::Read() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<Key, Histogram::Counts> out;
  for (const auto& [key, h] : requests_) out.emplace(key, h.Read());
  return out;
}

}  // namespace raftsql::obs
