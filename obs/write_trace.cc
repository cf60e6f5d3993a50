#include "obs/write_trace.h"

#include <time.h>

#include <cstdio>
#include <mutex>
#include <vector>

namespace raftsql::obs {
namespace {

struct Record {
  uint64_t index;
  int64_t at_ns;
  WriteStage stage;
};

struct Trace {
  std::mutex mu;
  std::string path;
  std::vector<Record> records;
  uint64_t dropped = 0;
};

Trace& TheTrace() {
  static Trace* trace = new Trace;  // Never destroyed: used at exit.
  return *trace;
}

}  // namespace

namespace internal {
std::atomic<bool> write_trace_on{false};

void RecordWrite(uint64_t index, WriteStage stage, int64_t at_ns) {
  Trace& t = TheTrace();
  std::lock_guard<std::mutex> l(t.mu);
  if (t.records.size() >= kMaxWriteTraceRecords) {
    ++t.dropped;
    return;
  }
  t.records.push_back(Record{index, at_ns, stage});
}
}  // namespace internal

const char* WriteStageName(WriteStage stage) {
  static constexpr const char* kNames[] = {
      "received",    "proposed",        "log_write_start", "log_write_end",
      "append_sent", "append_received", "ack_sent",        "ack_received",
      "committed",   "apply_start",     "applied",         "answered"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) ==
                static_cast<size_t>(WriteStage::kCount));
  return stage < WriteStage::kCount ? kNames[static_cast<size_t>(stage)] : "?";
}

void TraceMessage(const core::Message& m, bool received) {
  if (!WriteTraceOn()) return;
  if (m.type == core::MessageType::kApp && !m.entries.empty()) {
    TraceWrite(m.entries.back().index, received ? WriteStage::kAppendReceived
                                                : WriteStage::kAppendSent);
  } else if (m.type == core::MessageType::kAppResp && !m.reject) {
    TraceWrite(m.index,
               received ? WriteStage::kAckReceived : WriteStage::kAckSent);
  }
}

int64_t SteadyNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void EnableWriteTrace(std::string path) {
  Trace& t = TheTrace();
  {
    std::lock_guard<std::mutex> l(t.mu);
    t.path = std::move(path);
    t.records.reserve(kMaxWriteTraceRecords);
  }
  internal::write_trace_on.store(true);
}

absl::Status FlushWriteTrace() {
  if (!WriteTraceOn()) return absl::OkStatus();
  Trace& t = TheTrace();
  std::lock_guard<std::mutex> l(t.mu);
  FILE* f = std::fopen(t.path.c_str(), "w");
  if (f == nullptr) {
    return absl::InternalError("cannot write the write trace to " + t.path);
  }
  std::fprintf(f, "# dropped %llu\n",
               static_cast<unsigned long long>(t.dropped));
  for (const Record& r : t.records) {
    std::fprintf(f, "%llu %s %lld\n", static_cast<unsigned long long>(r.index),
                 WriteStageName(r.stage), static_cast<long long>(r.at_ns));
  }
  const bool ok = std::fclose(f) == 0;
  return ok ? absl::OkStatus()
            : absl::InternalError("cannot write the write trace to " + t.path);
}

}  // namespace raftsql::obs
