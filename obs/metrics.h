// What a node counts about itself for its /metrics (Prometheus): latency
// histograms with fixed buckets and per-request counts, kept lock-free (or
// under one short lock) where they are observed; the exposition format is
// made from them only when scraped (server/metrics.h).
#ifndef RAFTSQL_OBS_METRICS_H_
#define RAFTSQL_OBS_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace raftsql::obs {

// Seconds, in buckets whose upper bounds double from 50 µs to 6.6 s (18),
// then +Inf. Observe is lock-free; Read is a consistent-enough copy (each
// counter atomically, not all together).
class Histogram {
 public:
  static constexpr size_t kBounds = 18;
  static double UpperBound(size_t i);  // i < kBounds

  struct Counts {
    // Per bucket (not cumulative); the last one is +Inf.
    std::array<uint64_t, kBounds + 1> buckets{};
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  void Observe(double seconds);
  Counts Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Requests by method and outcome, with their latencies. The keys are
// bounded by the server's methods times the status codes.
class RequestMetrics {
 public:
  // `method` e.g. "/raftsql.v1.DatabaseService/Execute" or "POST
  // /db/execute"; `code` a status name ("OK", "UNAVAILABLE", "404").
  void Record(const std::string& protocol, const std::string& method,
              const std::string& code, double seconds);
  // The histogram Record would observe, to observe it directly (lock-free,
  // no lookup): valid as long as this object.
  Histogram& Slot(const std::string& protocol, const std::string& method,
                  const std::string& code);

  struct Key {
    std::string protocol, method, code;
    auto operator<=>(const Key&) const = default;
  };
  std::map<Key, Histogram::Counts> Read() const;

 private:
  mutable std::mutex mu_;
  // Guarded by mu_ (the map; a histogram observes lock-free). Never
  // erased from: Slot's references stay valid.
  std::map<Key, Histogram> requests_;
};

}  // namespace raftsql::obs

#endif  // RAFTSQL_OBS_METRICS_H_
