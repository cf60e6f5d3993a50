// A durable follower's snapshot sink for the core's tests: it holds the
// image in memory, and its check takes one round.
#ifndef RAFTSQL_CORE_TESTING_FAKE_SINK_H_
#define RAFTSQL_CORE_TESTING_FAKE_SINK_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/storage.h"

namespace raftsql::core::testing {

class FakeSink final : public SnapshotSink {
 public:
  std::optional<uint64_t> Held(const SnapshotMetadata& m, uint64_t from,
                               uint64_t size) const override {
    if (!receiving || m != metadata || from != from_ || size != size_) {
      return std::nullopt;
    }
    return bytes.size();
  }
  uint64_t held() const override {
    return receiving ? std::min(bytes.size(), stored) : 0;
  }
  absl::Status Begin(const SnapshotMetadata& m, uint64_t from,
                     uint64_t size) override {
    receiving = true;
    ++begins;
    metadata = m;
    from_ = from;
    size_ = size;
    bytes.clear();
    stored = later ? 0 : SIZE_MAX;
    return absl::OkStatus();
  }
  absl::Status Append(absl::string_view b) override {
    if (later && bytes.size() - stored + b.size() > max_unstored) {
      return absl::ResourceExhaustedError("full");
    }
    bytes.append(b.data(), b.size());
    return absl::OkStatus();
  }
  // Stores `n` more of the bytes taken (`later` only).
  void Store(size_t n) { stored = std::min(bytes.size(), stored + n); }
  absl::Status Finish() override {
    if (held() < bytes.size()) return absl::UnavailableError("storing");
    if (++finishes == 1) return absl::UnavailableError("checking");
    if (finishes == 2 && abort_once) return absl::AbortedError("again");
    return absl::OkStatus();
  }
  void Drop() override { receiving = false; }
  std::string Reference() const override {
    return "received:" + std::to_string(metadata.index);
  }
  void Installed() override {
    installed = bytes;
    receiving = false;
  }

  bool receiving = false;
  SnapshotMetadata metadata;
  std::string bytes;
  std::string installed;
  int finishes = 0;
  int begins = 0;
  bool abort_once = false;  // The second Finish: Aborted.
  // Stores what it takes when Store says (as a server's writer thread
  // does), holding at most max_unstored bytes it did not store.
  bool later = false;
  size_t max_unstored = SIZE_MAX;
  size_t stored = SIZE_MAX;

 private:
  uint64_t from_ = 0;
  uint64_t size_ = 0;
};

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_FAKE_SINK_H_
