// Test-only helpers to drive a single Raft by hand: build one over a
// MemoryStorage with a given log, step messages into it and read what it sent.
#ifndef RAFTSQL_CORE_TESTING_RAFT_FIXTURE_H_
#define RAFTSQL_CORE_TESTING_RAFT_FIXTURE_H_

#include <functional>
#include <memory>
#include <vector>

#include "core/memory_storage.h"
#include "core/raft.h"

namespace raftsql::core::testing {

struct RaftOptions {
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = false;
  bool check_quorum = false;
  size_t max_inflight_msgs = 256;
  uint64_t max_size_per_msg = 1 << 20;
  uint64_t seed = 1;
  // Terms of the entries at indexes 1, 2, ...
  std::vector<uint64_t> log_terms;
  HardState hard_state;
  std::function<absl::Status(const Snapshot&)> validate_snapshot;
  SnapshotSink* snapshot_sink = nullptr;  // Not owned.
};

class TestRaft {
 public:
  TestRaft(uint64_t id, std::vector<uint64_t> peers,
           const RaftOptions& options = {});

  Raft& operator*() { return *raft_; }
  Raft* operator->() { return raft_.get(); }
  MemoryStorage& storage() { return storage_; }

  // Steps a message and checks every invariant afterwards.
  absl::Status Step(Message m) {
    absl::Status s = raft_->Step(std::move(m));
    raft_->CheckInvariants();
    return s;
  }
  // Steps a message as if it arrived from the network (validated first).
  absl::Status StepNetwork(Message m) {
    absl::Status s = raft_->StepNetwork(std::move(m));
    raft_->CheckInvariants();
    return s;
  }
  // Takes the messages the Raft sent so far.
  std::vector<Message> TakeMessages();
  // Campaigns (without pre-vote) and wins with votes from every peer.
  void BecomeLeader();
  void BecomeCandidate();
  void TickTimes(int n) {
    for (int i = 0; i < n; ++i) {
      raft_->Tick();
      raft_->CheckInvariants();
    }
  }

 private:
  MemoryStorage storage_;
  std::unique_ptr<Raft> raft_;
};

Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term);

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_RAFT_FIXTURE_H_
