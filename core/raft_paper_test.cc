// Tests tied to the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm"), section by section, in the spirit of
// etcd's raft_paper_test.go. Plain Raft: PreVote and CheckQuorum are off.
#include <set>

#include "core/testing/network.h"
#include "core/testing/raft_fixture.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

using testing::Msg;
using testing::Network;
using testing::NetworkOptions;
using testing::RaftOptions;
using testing::TestRaft;

Message AppMsg(uint64_t from, uint64_t to, uint64_t term, uint64_t log_term,
               uint64_t index, uint64_t commit, std::vector<Entry> ents = {}) {
  Message m = Msg(MessageType::kApp, from, to, term);
  m.log_term = log_term;
  m.index = index;
  m.commit = commit;
  m.entries = std::move(ents);
  return m;
}

// Raft §5.1: a server that sees a larger term adopts it and becomes follower.
TEST(RaftPaper, EveryRoleAdoptsALargerTermAndFollows) {
  for (int role = 0; role < 3; ++role) {
    TestRaft r(1, {1, 2, 3});
    if (role == 1) r.BecomeCandidate();
    if (role == 2) r.BecomeLeader();
    ASSERT_TRUE(r.Step(AppMsg(2, 1, 7, 0, 0, 0)).ok());
    EXPECT_EQ(r->term(), 7u);
    EXPECT_EQ(r->state(), StateType::kFollower);
    EXPECT_EQ(r->lead(), 2u);
  }
}

// Raft §5.1: a request with a stale term is rejected.
TEST(RaftPaper, StaleTermMessageIsIgnored) {
  TestRaft r(1, {1, 2, 3}, RaftOptions{.hard_state = {5, 0, 0}});
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 3, 0, 0, 0)).ok());
  EXPECT_EQ(r->lead(), kNone);
  EXPECT_EQ(r->term(), 5u);
  EXPECT_TRUE(r.TakeMessages().empty());
}

// Raft §5.2: servers start as followers.
TEST(RaftPaper, ServersStartAsFollowers) {
  TestRaft r(1, {1, 2, 3});
  EXPECT_EQ(r->state(), StateType::kFollower);
  EXPECT_EQ(r->term(), 0u);
}

// Raft §5.2: a leader sends periodic heartbeats to maintain its authority.
TEST(RaftPaper, LeaderBroadcastsHeartbeatsEveryHeartbeatTimeout) {
  TestRaft r(1, {1, 2, 3}, RaftOptions{.heartbeat_ticks = 2});
  r.BecomeLeader();
  r->Tick();
  EXPECT_TRUE(r.TakeMessages().empty());
  r->Tick();
  std::vector<Message> msgs = r.TakeMessages();
  ASSERT_EQ(msgs.size(), 2u);
  std::set<uint64_t> to;
  for (const Message& m : msgs) {
    EXPECT_EQ(m.type, MessageType::kHeartbeat);
    to.insert(m.to);
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// Raft §5.2: a follower that hears nothing for an election timeout becomes a
// candidate, increments its term, votes for itself and requests votes.
TEST(RaftPaper, SilentFollowerStartsAnElection) {
  TestRaft r(1, {1, 2, 3});
  r.TickTimes(20);
  EXPECT_EQ(r->state(), StateType::kCandidate);
  EXPECT_EQ(r->term(), 1u);
  EXPECT_EQ(r->vote(), 1u);
  std::vector<Message> msgs = r.TakeMessages();
  ASSERT_EQ(msgs.size(), 2u);
  for (const Message& m : msgs) {
    EXPECT_EQ(m.type, MessageType::kVote);
    EXPECT_EQ(m.term, 1u);
  }
}

// Raft §5.2: a candidate wins with votes from a majority, loses with a
// majority of rejections, and otherwise waits.
TEST(RaftPaper, CandidateNeedsAMajorityOfVotes) {
  struct Case {
    std::vector<uint64_t> peers;
    std::map<uint64_t, bool> votes;
    StateType want;
  };
  const std::vector<Case> cases = {
      {{1}, {}, StateType::kLeader},
      {{1, 2, 3}, {{2, true}, {3, true}}, StateType::kLeader},
      {{1, 2, 3}, {{2, true}}, StateType::kLeader},
      {{1, 2, 3, 4, 5}, {{2, true}, {3, true}}, StateType::kLeader},
      {{1, 2, 3, 4, 5}, {{2, true}}, StateType::kCandidate},
      {{1, 2, 3}, {{2, false}, {3, false}}, StateType::kFollower},
      {{1, 2, 3, 4, 5},
       {{2, false}, {3, false}, {4, false}},
       StateType::kFollower},
      {{1, 2, 3, 4, 5},
       {{2, true}, {3, false}, {4, false}},
       StateType::kCandidate},
  };
  for (const Case& c : cases) {
    TestRaft r(1, c.peers);
    r.BecomeCandidate();
    for (const auto& [id, granted] : c.votes) {
      Message m = Msg(MessageType::kVoteResp, id, 1, r->term());
      m.reject = !granted;
      ASSERT_TRUE(r.Step(m).ok());
    }
    EXPECT_EQ(r->state(), c.want) << c.peers.size() << " peers";
  }
}

// Raft §5.2: each server votes for at most one candidate in a term, first
// come first served.
TEST(RaftPaper, FollowerVotesFirstComeFirstServed) {
  TestRaft r(1, {1, 2, 3});
  Message v2 = Msg(MessageType::kVote, 2, 1, 1);
  Message v3 = Msg(MessageType::kVote, 3, 1, 1);
  ASSERT_TRUE(r.Step(v2).ok());
  ASSERT_TRUE(r.Step(v3).ok());
  ASSERT_TRUE(r.Step(v2).ok());  // A retry from the same candidate.
  std::vector<Message> msgs = r.TakeMessages();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_FALSE(msgs[0].reject);
  EXPECT_TRUE(msgs[1].reject);
  EXPECT_FALSE(msgs[2].reject);
  EXPECT_EQ(r->vote(), 2u);
}

// Raft §5.2: a candidate that hears from a leader of its own term steps down.
TEST(RaftPaper, CandidateFallsBackToALeaderOfItsTerm) {
  TestRaft r(1, {1, 2, 3});
  r.BecomeCandidate();
  ASSERT_TRUE(r.Step(AppMsg(2, 1, r->term(), 0, 0, 0)).ok());
  EXPECT_EQ(r->state(), StateType::kFollower);
  EXPECT_EQ(r->lead(), 2u);
  EXPECT_EQ(r->term(), 1u);
}

// Raft §5.2: election timeouts are randomized in [T, 2T).
TEST(RaftPaper, ElectionTimeoutsAreRandomizedOverTheWholeRange) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    TestRaft r(1, {1, 2, 3}, RaftOptions{.seed = seed});
    int ticks = 0;
    while (r->state() == StateType::kFollower) {
      r->Tick();
      ++ticks;
      ASSERT_LE(ticks, 20);
    }
    EXPECT_GE(ticks, 10);
    seen.insert(ticks);
  }
  EXPECT_EQ(seen.size(), 10u);  // Every value in [10, 20) occurs.
}

// Raft §5.3: the leader appends a proposal and sends it to every follower
// with the index and term of the entry before it.
TEST(RaftPaper, LeaderReplicatesAProposalToEveryFollower) {
  TestRaft r(1, {1, 2, 3});
  r.BecomeLeader();
  // Followers acknowledge the no-op so that they are in replicate state.
  for (uint64_t id : {2, 3}) {
    Message ack = Msg(MessageType::kAppResp, id, 1, 1);
    ack.index = 1;
    ASSERT_TRUE(r.Step(ack).ok());
  }
  r.TakeMessages();
  Message prop = Msg(MessageType::kProp, 1, 1, 0);
  prop.entries.push_back(Entry{0, 0, EntryType::kNormal, "x"});
  ASSERT_TRUE(r.Step(prop).ok());
  EXPECT_EQ(r->log().LastIndex(), 2u);
  std::vector<Message> msgs = r.TakeMessages();
  ASSERT_EQ(msgs.size(), 2u);
  for (const Message& m : msgs) {
    EXPECT_EQ(m.type, MessageType::kApp);
    EXPECT_EQ(m.index, 1u);
    EXPECT_EQ(m.log_term, 1u);
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0], (Entry{1, 2, EntryType::kNormal, "x"}));
    EXPECT_EQ(m.commit, 1u);
  }
}

// Raft §5.3: an entry is committed once a majority stores it, and the leader
// tells followers the new commit index.
TEST(RaftPaper, LeaderCommitsOnceAMajorityAcknowledges) {
  TestRaft r(1, {1, 2, 3, 4, 5});
  r.BecomeLeader();
  EXPECT_EQ(r->log().committed(), 0u);
  Message ack = Msg(MessageType::kAppResp, 2, 1, 1);
  ack.index = 1;
  ASSERT_TRUE(r.Step(ack).ok());
  EXPECT_EQ(r->log().committed(), 0u);  // 2 of 5.
  ack.from = 3;
  ASSERT_TRUE(r.Step(ack).ok());
  EXPECT_EQ(r->log().committed(), 1u);  // 3 of 5.
}

// Raft §5.3: a follower commits what the leader says is committed, but only
// up to what the message proves it shares.
TEST(RaftPaper, FollowerAdoptsTheLeadersCommitIndex) {
  TestRaft r(1, {1, 2, 3});
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 1, 0, 0, 1,
                            {Entry{1, 1, EntryType::kNormal, "a"},
                             Entry{1, 2, EntryType::kNormal, "b"}}))
                  .ok());
  EXPECT_EQ(r->log().committed(), 1u);
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 1, 1, 2, 2)).ok());
  EXPECT_EQ(r->log().committed(), 2u);
}

// Raft §5.3 (Log Matching): a follower refuses entries whose predecessor it
// does not hold with the same term, and hints where to retry.
TEST(RaftPaper, FollowerRejectsAppendWhosePredecessorDiffers) {
  TestRaft r(1, {1, 2, 3}, RaftOptions{.log_terms = {1, 2}});
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 3, 3, 2, 0)).ok());  // We have term 2 at 2.
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 3, 3, 3, 0)).ok());  // We have no index 3.
  ASSERT_TRUE(r.Step(AppMsg(2, 1, 3, 2, 2, 0)).ok());  // Matches.
  std::vector<Message> msgs = r.TakeMessages();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_TRUE(msgs[0].reject);
  EXPECT_EQ(msgs[0].reject_hint, 2u);
  EXPECT_TRUE(msgs[1].reject);
  EXPECT_EQ(msgs[1].reject_hint, 2u);
  EXPECT_FALSE(msgs[2].reject);
  EXPECT_EQ(msgs[2].index, 2u);
}

// Raft §5.3: a follower deletes a conflicting suffix and appends the leader's.
TEST(RaftPaper, FollowerReplacesAConflictingSuffix) {
  TestRaft r(1, {1, 2, 3}, RaftOptions{.log_terms = {1, 2, 2}});
  ASSERT_TRUE(
      r.Step(AppMsg(2, 1, 3, 1, 1, 0, {Entry{3, 2, EntryType::kNormal, "n"}}))
          .ok());
  EXPECT_EQ(r->log().LastIndex(), 2u);
  EXPECT_EQ(r->log().LastTerm(), 3u);
}

// Raft §5.3, Figure 7: whatever a follower's log looks like, the leader
// brings it to exactly its own.
TEST(RaftPaper, LeaderBringsEveryFigure7FollowerInSync) {
  const std::vector<uint64_t> leader_log = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a) missing one
      {1, 1, 1, 4},                          // (b) missing many
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c) one extra
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d) extra of a later term
      {1, 1, 1, 4, 4, 4, 4},                 // (e) missing and extra
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f) many extra of old terms
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    Network net({1, 2, 3},
                NetworkOptions{.pre_vote = false, .check_quorum = false});
    auto load = [&](uint64_t id, const std::vector<uint64_t>& terms) {
      net.Crash(id);
      std::vector<Entry> ents;
      for (size_t k = 0; k < terms.size(); ++k) {
        ents.push_back(Entry{terms[k], k + 1, EntryType::kNormal, ""});
      }
      net.storage(id).Append(ents);
      net.storage(id).SetHardState(HardState{8, kNone, 0});
      net.Restart(id);
    };
    load(1, leader_log);
    load(2, followers[i]);
    load(3, leader_log);
    ASSERT_TRUE(net.node(1).Campaign().ok());
    net.ProcessReadies();
    net.Stabilize();
    ASSERT_EQ(net.raft(1).state(), StateType::kLeader) << "case " << i;
    auto terms_of = [&](uint64_t id) {
      std::vector<uint64_t> out;
      const RaftLog& log = net.raft(id).log();
      for (uint64_t k = 1; k <= log.LastIndex(); ++k) {
        out.push_back(log.ZeroTermOnError(k));
      }
      return out;
    };
    EXPECT_EQ(terms_of(2), terms_of(1)) << "case " << i;
    EXPECT_TRUE(net.violation().empty()) << net.violation();
  }
}

// Raft §5.4.1 (election restriction): a voter denies its vote to a candidate
// whose log is less up-to-date than its own.
TEST(RaftPaper, VoterDeniesCandidatesWithStaleLogs) {
  struct Case {
    uint64_t log_term;
    uint64_t index;
    bool granted;
  };
  // The voter's log: terms {2, 2} at indexes {1, 2}.
  const std::vector<Case> cases = {
      {2, 1, false},  // Same last term, shorter log.
      {2, 2, true},   // Same last term, same length.
      {2, 3, true},   // Same last term, longer log.
      {1, 3, false},  // Older last term, even if longer.
      {3, 1, true},   // Newer last term, even if shorter.
  };
  for (const Case& c : cases) {
    TestRaft r(1, {1, 2, 3}, RaftOptions{.log_terms = {2, 2}});
    Message v = Msg(MessageType::kVote, 2, 1, 3);
    v.log_term = c.log_term;
    v.index = c.index;
    ASSERT_TRUE(r.Step(v).ok());
    std::vector<Message> msgs = r.TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(!msgs[0].reject, c.granted)
        << "candidate last " << c.log_term << "/" << c.index;
    EXPECT_EQ(r->vote(), c.granted ? 2u : kNone);
  }
}

// Raft §5.4.2 (Figure 8): a leader never commits an entry from an earlier term
// by counting replicas; it commits once an entry of its own term is on a
// majority, and the earlier entries with it.
TEST(RaftPaper, LeaderOnlyCommitsEntriesOfItsOwnTermByCounting) {
  TestRaft r(1, {1, 2, 3},
             RaftOptions{.log_terms = {1, 2}, .hard_state = {2, kNone, 0}});
  r.BecomeLeader();  // Term 3; the no-op goes to index 3.
  ASSERT_EQ(r->term(), 3u);
  Message ack = Msg(MessageType::kAppResp, 2, 1, 3);
  ack.index = 2;  // Follower 2 holds the term-2 entry: a majority has it.
  ASSERT_TRUE(r.Step(ack).ok());
  EXPECT_EQ(r->log().committed(), 0u);
  ack.index = 3;
  ASSERT_TRUE(r.Step(ack).ok());
  EXPECT_EQ(r->log().committed(), 3u);
}

}  // namespace
}  // namespace raftsql::core
