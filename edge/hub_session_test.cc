#include "edge/hub_session.h"

#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::edge {
namespace {

using sm::CommandResult;

constexpr int64_t kNow = 1'800'000'000'000;

// Drives a session over an in-memory state machine: writes are applied at
// once (or held, or refused), reads are run at once.
class HubSessionTest : public ::testing::Test {
 protected:
  HubSessionTest() : sm_(sm::OpenMemory()) { session_ = NewSession("d1"); }

  std::unique_ptr<HubSession> NewSession(const std::string& device) {
    HubSessionOptions o;
    o.node = 2;
    o.name = "2-1-" + device;
    o.command_lock_ms = 30'000;
    o.schema_known = [this] { return schema_known_; };
    return std::make_unique<HubSession>(o, device);
  }

  void Run(HubEffects fx) {
    for (v1::EdgeDown& d : fx.sends) sent_.push_back(std::move(d));
    if (fx.end.has_value()) ended_ = *fx.end;
    schema_known_ |= fx.schema_made;
    writes_ += fx.writes.size();
    for (HubEffects::Write& w : fx.writes) {
      if (hold_) {
        held_.push_back(std::move(w));
      } else if (refuse_) {
        Answer(w.op, absl::ResourceExhaustedError("the hub is busy"));
      } else {
        Answer(w.op, Apply(w.command));
      }
    }
    for (HubEffects::Read& r : fx.reads) {
      HubEffects next;
      session_->OnRead(r.op, sm_->Query(r.query), now_, &next);
      Run(std::move(next));
    }
  }
  void Answer(uint64_t op, const absl::StatusOr<CommandResult>& r) {
    HubEffects next;
    session_->OnWritten(op, r, now_, &next);
    Run(std::move(next));
  }
  CommandResult Apply(const sm::Command& c) {
    return sm::Decoded(sm_->Apply(sm::E(sm_->AppliedIndex() + 1, c)));
  }
  // Applies the held writes, oldest first.
  void Release() {
    hold_ = false;
    while (!held_.empty()) {
      HubEffects::Write w = std::move(held_.front());
      held_.pop_front();
      Answer(w.op, Apply(w.command));
    }
  }
  void Receive(const v1::EdgeUp& up) {
    HubEffects fx;
    session_->OnMessage(up, now_, &fx);
    Run(std::move(fx));
  }
  void Poke(bool commands, bool twin) {
    HubEffects fx;
    session_->Poke(commands, twin, &fx);
    Run(std::move(fx));
  }
  void Hello() {
    v1::EdgeUp up;
    up.mutable_hello()->set_incarnation("inc-1");
    Receive(up);
  }
  void Upload(uint64_t batch, uint64_t first, uint64_t last,
              double value = 1.5) {
    v1::EdgeUp up;
    up.mutable_upload()->set_batch(batch);
    up.mutable_upload()->set_oldest_sequence(first);
    for (uint64_t s = first; s <= last; ++s) {
      v1::Reading* r = up.mutable_upload()->add_readings();
      r->set_sensor("temp");
      r->set_value(value);
      r->set_unit("C");
      r->set_device_time_ms(kNow);
      r->set_sequence(s);
    }
    Receive(up);
  }
  void Issue(const std::string& id, const std::string& device = "d1") {
    HubCommand c;
    c.id = id;
    c.device = device;
    c.name = "set";
    c.params_json = "{}";
    c.expires_ms = now_ + 60'000;
    c.max_attempts = 2;
    Apply(IssueCommand(c, now_));
  }
  void SetDesired(const std::string& patch) {
    Apply(SetDesiredCommand("d1", patch, now_));
  }
  int64_t Readings() { return sm::Count(*sm_, "edge_readings"); }
  // The ids of the commands sent so far, in order.
  std::vector<std::string> CommandsSent() const {
    std::vector<std::string> ids;
    for (const v1::EdgeDown& d : sent_) {
      if (d.has_command()) ids.push_back(d.command().id());
    }
    return ids;
  }

  std::unique_ptr<sm::SqliteStateMachine> sm_;
  std::unique_ptr<HubSession> session_;
  int64_t now_ = kNow;
  bool schema_known_ = false;
  bool hold_ = false;
  bool refuse_ = false;
  size_t writes_ = 0;
  std::deque<HubEffects::Write> held_;
  std::vector<v1::EdgeDown> sent_;
  std::optional<absl::Status> ended_;
};

TEST_F(HubSessionTest, HelloOnANewHubMakesTheTablesThenWelcomes) {
  Hello();
  ASSERT_EQ(sent_.size(), 1u);
  ASSERT_TRUE(sent_[0].has_welcome());
  EXPECT_EQ(sent_[0].welcome().acked_sequence(), 0u);
  EXPECT_EQ(sent_[0].welcome().node(), 2u);
  EXPECT_TRUE(schema_known_);
  EXPECT_TRUE(session_->welcomed());
  EXPECT_EQ(session_->pending(), 0u);
  EXPECT_EQ(sm::QueryValue(*sm_, "SELECT session FROM edge_devices").bytes,
            "2-1-d1");
  // A second session on this node proposes no schema.
  const size_t before = writes_;
  session_ = NewSession("d2");
  Hello();
  EXPECT_EQ(writes_ - before, 1u);
}

// Tables an older release made lack a column its deliveries need: the
// first session on a node adds it before its Hello.
TEST_F(HubSessionTest, HelloOnAnOlderHubUpgradesTheTablesFirst) {
  Apply(SchemaCommand());
  sm::Command drop;
  drop.statements.push_back(sm::Statement{
      "ALTER TABLE edge_commands DROP COLUMN delivered_to", {}, {}});
  Apply(drop);
  Hello();
  ASSERT_EQ(sent_.size(), 1u);
  ASSERT_TRUE(sent_[0].has_welcome());
  EXPECT_EQ(writes_, 3u);  // Schema (nothing to make), upgrade, Hello.
  Issue("a");
  Poke(true, false);
  EXPECT_EQ(CommandsSent(), (std::vector<std::string>{"a"}));
}

TEST_F(HubSessionTest, MessagesOutOfOrderEndTheSession) {
  Upload(1, 1, 3);
  ASSERT_TRUE(ended_.has_value());
  EXPECT_EQ(ended_->message(), "say Hello first");
  EXPECT_TRUE(sent_.empty());

  session_ = NewSession("d1");
  ended_.reset();
  Hello();
  Hello();
  ASSERT_TRUE(ended_.has_value());
  EXPECT_EQ(ended_->message(), "Hello twice");

  session_ = NewSession("d1");
  ended_.reset();
  Hello();
  Receive(v1::EdgeUp());
  ASSERT_TRUE(ended_.has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(*ended_));
}

TEST_F(HubSessionTest, ABadIncarnationEndsTheSessionBeforeAnyWrite) {
  v1::EdgeUp up;
  up.mutable_hello()->set_incarnation(std::string(1000, 'x'));
  Receive(up);
  ASSERT_TRUE(ended_.has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(*ended_)) << *ended_;
  EXPECT_EQ(writes_, 0u);
  EXPECT_FALSE(session_->Goodbye(now_).has_value());
}

TEST_F(HubSessionTest, UploadsAreStoredOnceAndAcked) {
  Hello();
  Upload(1, 1, 100);
  Upload(2, 1, 100);  // Again: stored once.
  Upload(3, 101, 150);
  ASSERT_EQ(sent_.size(), 4u);
  EXPECT_EQ(sent_[1].ack().batch(), 1u);
  EXPECT_EQ(sent_[1].ack().code(), 0);
  EXPECT_EQ(sent_[1].ack().acked_sequence(), 100u);
  EXPECT_EQ(sent_[2].ack().acked_sequence(), 100u);
  EXPECT_EQ(sent_[3].ack().acked_sequence(), 150u);
  EXPECT_EQ(Readings(), 150);
  EXPECT_EQ(session_->uploads_in_flight(), 0u);
}

TEST_F(HubSessionTest, AnInvalidUploadIsAnsweredAndNothingIsWritten) {
  Hello();
  const size_t before = writes_;
  Upload(7, 1, 3, std::numeric_limits<double>::quiet_NaN());
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].ack().batch(), 7u);
  EXPECT_EQ(sent_[1].ack().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(writes_, before);
  EXPECT_EQ(Readings(), 0);
  EXPECT_FALSE(ended_.has_value());
}

TEST_F(HubSessionTest, ARefusedUploadIsAnsweredWithARetryHint) {
  Hello();
  refuse_ = true;
  Upload(1, 1, 10);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].ack().code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_GT(sent_[1].ack().retry_after_ms(), 0u);
  EXPECT_EQ(Readings(), 0);
  EXPECT_EQ(session_->uploads_in_flight(), 0u);
}

TEST_F(HubSessionTest, CommandsAreMarkedThenSentInIssueOrder) {
  Hello();
  Issue("a");
  Issue("b");
  Issue("other", "d9");
  Poke(true, false);
  EXPECT_EQ(CommandsSent(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sm::QueryValue(*sm_,
                           "SELECT count(*) FROM edge_commands WHERE "
                           "status = 'delivered'")
                .integer,
            2);
  // Delivered and locked: a look now sends nothing again.
  Poke(true, false);
  EXPECT_EQ(CommandsSent().size(), 2u);
}

TEST_F(HubSessionTest, ALookAskedForDuringOneRunsWhenItEnds) {
  Hello();
  Issue("a");
  hold_ = true;
  Poke(true, false);  // Its delivery of "a" is held.
  ASSERT_EQ(held_.size(), 1u);
  Issue("b");
  Poke(true, false);  // Only remembered: a look is running.
  EXPECT_EQ(held_.size(), 1u);
  Release();
  EXPECT_EQ(CommandsSent(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(session_->pending(), 0u);
}

TEST_F(HubSessionTest, ABusyHubEndsTheLookAndTheNextOneDelivers) {
  Hello();
  Issue("a");
  Issue("b");
  refuse_ = true;
  Poke(true, false);
  EXPECT_EQ(writes_, 4u);  // Schema, upgrade, Hello, one delivery refused.
  EXPECT_TRUE(CommandsSent().empty());
  refuse_ = false;
  Poke(true, false);
  EXPECT_EQ(CommandsSent(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(HubSessionTest, DesiredStateIsSentOncePerVersion) {
  Apply(SchemaCommand());
  SetDesired(R"({"sample_ms": 100})");
  Hello();
  ASSERT_EQ(sent_.size(), 2u);
  ASSERT_TRUE(sent_[1].has_desired());
  EXPECT_EQ(sent_[1].desired().version(), 1u);
  Poke(false, true);
  EXPECT_EQ(sent_.size(), 2u);
  SetDesired(R"({"sample_ms": 200})");
  Poke(false, true);
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].desired().version(), 2u);
}

TEST_F(HubSessionTest, ATwinReportNotStoredEndsTheSession) {
  Hello();
  v1::EdgeUp up;
  up.mutable_twin()->set_reported_json(R"({"sample_ms": 100})");
  up.mutable_twin()->set_desired_version(0);
  refuse_ = true;
  Receive(up);
  ASSERT_TRUE(ended_.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*ended_)) << *ended_;
  EXPECT_TRUE(session_->ending());
}

TEST_F(HubSessionTest, AnEndedSessionStartsNothingAndSaysGoodbye) {
  Hello();
  Issue("a");
  session_->End(absl::AbortedError("a newer session of this device began"));
  const size_t writes = writes_;
  const size_t sent = sent_.size();
  Poke(true, true);
  Upload(1, 1, 5);
  EXPECT_EQ(writes_, writes);
  EXPECT_EQ(sent_.size(), sent);
  EXPECT_FALSE(ended_.has_value());  // The driver ended it: no effect.
  EXPECT_EQ(session_->end_status().message(),
            "a newer session of this device began");
  std::optional<sm::Command> bye = session_->Goodbye(now_);
  ASSERT_TRUE(bye.has_value());
  Apply(*bye);
  EXPECT_EQ(sm::QueryValue(*sm_, "SELECT connected FROM edge_devices").integer,
            0);
}

TEST_F(HubSessionTest, AnswersInFlightWhenTheSessionEndsAreNotSent) {
  Hello();
  hold_ = true;
  Upload(1, 1, 5);
  EXPECT_EQ(session_->pending(), 1u);
  session_->End(absl::UnavailableError("node shutting down"));
  Release();
  EXPECT_EQ(sent_.size(), 1u);  // The Welcome only.
  EXPECT_EQ(Readings(), 5);     // Stored: the edge sends it again.
  EXPECT_EQ(session_->pending(), 0u);
}

}  // namespace
}  // namespace raftsql::edge
