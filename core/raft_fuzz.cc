// libFuzzer target: a 3-node cluster (core/testing's Network, the real
// RawNode runtime cycle) receives fuzzed messages from its peers and from
// strangers, interleaved with honest traffic, ticks, proposals and reads.
// Whatever arrives, no CHECK may fire (CheckInvariants runs after every
// step). Built and run by tests/fuzz_test.sh with Debian's clang.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/testing/network.h"

namespace raftsql::core {
namespace {

// Values near the node's own, where the deep paths are, or anything.
uint64_t Near(FuzzedDataProvider& in, uint64_t base) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      return 0;
    case 1:
      return base > 0 ? base - 1 : 0;
    case 2:
      return base;
    case 3:
      return base + 1;
    case 4:
      return base + in.ConsumeIntegralInRange<uint64_t>(0, 10);
    default:
      return in.ConsumeIntegral<uint64_t>();
  }
}

Message Forged(FuzzedDataProvider& in, testing::Network& net) {
  const uint64_t to = in.ConsumeIntegralInRange<uint64_t>(1, 3);
  const Raft& r = net.raft(to);
  Message m;
  m.type = static_cast<MessageType>(in.ConsumeIntegralInRange<int>(
      0, static_cast<int>(MessageType::kReadIndexResp)));
  m.to = in.ConsumeIntegralInRange<int>(0, 9) == 0
             ? in.ConsumeIntegralInRange<uint64_t>(0, 5)
             : to;
  m.from = in.ConsumeIntegralInRange<uint64_t>(0, 5);
  m.term = Near(in, r.term());
  m.log_term = Near(in, r.log().LastTerm());
  m.index = Near(in, r.log().LastIndex());
  m.commit = Near(in, r.log().committed());
  m.reject = in.ConsumeBool();
  m.reject_hint = Near(in, r.log().LastIndex());
  m.context = in.ConsumeRandomLengthString(24);
  const int entries = in.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < entries; ++i) {
    Entry e;
    e.term = Near(in, m.term);
    e.index = in.ConsumeBool() ? m.index + 1 + i : Near(in, m.index);
    e.type = in.ConsumeBool() ? EntryType::kNormal : EntryType::kConfChange;
    e.data = in.ConsumeBool()
                 ? ConfChange{static_cast<ConfChange::Type>(
                                  in.ConsumeIntegralInRange<int>(0, 2)),
                              in.ConsumeIntegralInRange<uint64_t>(0, 5), ""}
                       .Encode()
                 : in.ConsumeRandomLengthString(16);
    m.entries.push_back(std::move(e));
  }
  if (in.ConsumeBool()) {
    Snapshot s;
    s.metadata.index = Near(in, r.log().committed());
    s.metadata.term = Near(in, m.term);
    for (uint64_t id = 1; id <= 5; ++id) {
      switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 1:
          s.metadata.conf_state.voters.push_back(id);
          break;
        case 2:
          s.metadata.conf_state.learners.push_back(id);
          break;
        default:
          break;
      }
    }
    s.data = in.ConsumeRandomLengthString(64);
    m.snapshot = std::move(s);
    m.snapshot_offset = Near(in, 0);
    m.snapshot_size = Near(in, m.snapshot->data.size());
  }
  return m;
}

}  // namespace
}  // namespace raftsql::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftsql::core;
  FuzzedDataProvider in(data, size);
  testing::NetworkOptions options;
  options.seed = in.ConsumeIntegral<uint64_t>();
  options.max_snapshot_chunk_bytes = 16;
  testing::Network net({1, 2, 3}, options);
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0:
        net.Inject(Forged(in, net));
        break;
      case 1:
        net.TickAll();
        break;
      case 2:
        (void)net.Propose(in.ConsumeIntegralInRange<uint64_t>(1, 3), "x");
        break;
      case 3:
        (void)net.node(in.ConsumeIntegralInRange<uint64_t>(1, 3))
            .ReadIndex(in.ConsumeRandomLengthString(8));
        break;
      case 4:
        (void)net.node(in.ConsumeIntegralInRange<uint64_t>(1, 3)).Campaign();
        break;
      default:
        for (int i = 0; i < 8 && net.DeliverOne(); ++i) {
        }
        break;
    }
    net.ProcessReadies();
  }
  return 0;
}
