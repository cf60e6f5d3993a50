// libFuzzer target: bytes off the peer port, parsed as a RaftMessage,
// converted (FromProto) and validated at the core's boundary, then stepped
// into a follower and a leader of a 3-node cluster. Any bytes: an error,
// never a crash. Built and run by tests/fuzz_test.sh.
#include <cstdint>

#include "core/message_validation.h"
#include "core/testing/network.h"
#include "net/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftsql;
  raftsql::v1::RaftMessage p;
  if (!p.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<core::Message> m = net::FromProto(p);
  if (!m.ok()) return 0;
  // Round trip: what converts back parses to the same message.
  raftsql::v1::RaftMessage back;
  net::ToProto(*m, &back);
  absl::StatusOr<core::Message> again = net::FromProto(back);
  CHECK(again.ok());
  (void)core::ValidateNetworkMessage(*m, uint64_t{1} << 20);
  core::testing::Network net({1, 2, 3}, core::testing::NetworkOptions{});
  (void)net.node(1).Campaign();
  net.ProcessReadies();
  for (int i = 0; i < 64 && net.DeliverOne(); ++i) {
  }
  for (uint64_t to : {1, 2}) {
    core::Message copy = *m;
    copy.to = to;
    net.Inject(std::move(copy));
  }
  for (int i = 0; i < 64 && net.DeliverOne(); ++i) {
  }
  return 0;
}
