#include "core/testing/raft_fixture.h"

#include <algorithm>

#include "core/check.h"

namespace raftsql::core::testing {

TestRaft::TestRaft(uint64_t id, std::vector<uint64_t> peers,
                   const RaftOptions& options) {
  std::sort(peers.begin(), peers.end());
  storage_.SetConfState(ConfState{peers, {}});
  std::vector<Entry> ents;
  for (size_t i = 0; i < options.log_terms.size(); ++i) {
    ents.push_back(Entry{options.log_terms[i], i + 1, EntryType::kNormal, ""});
  }
  storage_.Append(ents);
  storage_.SetHardState(options.hard_state);
  Config c;
  c.id = id;
  c.election_ticks = options.election_ticks;
  c.heartbeat_ticks = options.heartbeat_ticks;
  c.storage = &storage_;
  c.pre_vote = options.pre_vote;
  c.check_quorum = options.check_quorum;
  c.max_inflight_msgs = options.max_inflight_msgs;
  c.max_size_per_msg = options.max_size_per_msg;
  c.seed = options.seed;
  c.validate_snapshot = options.validate_snapshot;
  c.snapshot_sink = options.snapshot_sink;
  raft_ = std::make_unique<Raft>(c);
}

std::vector<Message> TestRaft::TakeMessages() {
  std::vector<Message> out = std::move(raft_->msgs());
  raft_->msgs().clear();
  return out;
}

void TestRaft::BecomeCandidate() {
  Message hup;
  hup.type = MessageType::kHup;
  hup.from = raft_->id();
  CHECK(raft_->Step(hup).ok());
}

void TestRaft::BecomeLeader() {
  BecomeCandidate();
  if (raft_->state() == StateType::kPreCandidate) {
    for (const auto& [id, pr] : raft_->tracker().progress()) {
      if (id == raft_->id()) continue;
      CHECK(raft_
                ->Step(Msg(MessageType::kPreVoteResp, id, raft_->id(),
                           raft_->term() + 1))
                .ok());
    }
  }
  for (const auto& [id, pr] : raft_->tracker().progress()) {
    if (id == raft_->id() || raft_->state() == StateType::kLeader) continue;
    CHECK(
        raft_->Step(Msg(MessageType::kVoteResp, id, raft_->id(), raft_->term()))
            .ok());
  }
  CHECK(raft_->state() == StateType::kLeader);
  TakeMessages();
}

Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

}  // namespace raftsql::core::testing
