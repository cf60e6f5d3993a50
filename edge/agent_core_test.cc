#include "edge/agent_core.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::edge {
namespace {

namespace pb = ::raftsql::edge::v1;

// Hands out the readings it is given, once.
class ListSource final : public Source {
 public:
  explicit ListSource(std::vector<Reading>* readings) : readings_(readings) {}
  std::vector<Reading> Poll(int64_t) override {
    std::vector<Reading> out;
    out.swap(*readings_);
    return out;
  }

 private:
  std::vector<Reading>* readings_;
};

class AgentCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/raftsql-core-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    StoreOptions so;
    so.path = dir_ + "/edge.db";
    auto store = EdgeStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    AgentCoreOptions o;
    o.batch_max = 3;
    o.batch_ms = 100;
    o.sample_ms = 10;
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<ListSource>(&next_));
    core_ = std::make_unique<AgentCore>(o, store_.get(), std::move(sources),
                                        &actuator_);
  }
  void TearDown() override {
    core_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Produce(int n, int64_t at_ms) {
    for (int i = 0; i < n; ++i)
      next_.push_back(Reading{"t", 1.0, "C", at_ms, 0});
    core_->Sample(at_ms);
  }
  static int Uploads(const AgentCore::Out& out) {
    int n = 0;
    for (const pb::EdgeUp& up : out) n += up.has_upload() ? 1 : 0;
    return n;
  }

  std::string dir_;
  std::vector<Reading> next_;
  SimulatedActuator actuator_;
  std::unique_ptr<EdgeStore> store_;
  std::unique_ptr<AgentCore> core_;
};

TEST_F(AgentCoreTest, ReadingsAreDurableBeforeTheyAreUploaded) {
  AgentCore::Out out;
  core_->Welcomed(0, &out);
  Produce(2, 1000);
  out.clear();
  // Not due yet (2 of 3, younger than batch_ms): nothing sent, no sync.
  ASSERT_TRUE(core_->Flush(1050, &out));
  EXPECT_EQ(Uploads(out), 0);
  EXPECT_EQ(store_->durable_sequence(), 0u);
  // Due: made durable first, then sent.
  ASSERT_TRUE(core_->Flush(1100, &out));
  ASSERT_EQ(Uploads(out), 1);
  EXPECT_EQ(store_->durable_sequence(), 2u);
  EXPECT_EQ(out.back().upload().readings_size(), 2);
}

TEST_F(AgentCoreTest, RetriableRefusalsInARowGiveUpTheSession) {
  AgentCore::Out out;
  core_->Welcomed(0, &out);
  for (int i = 1; i <= kMaxRefusalsInARow; ++i) {
    EXPECT_FALSE(core_->GiveUp());
    pb::EdgeDown down;
    down.mutable_ack()->set_batch(static_cast<uint64_t>(i));
    down.mutable_ack()->set_code(14);  // UNAVAILABLE
    core_->OnMessage(down, 1000, &out);
  }
  EXPECT_TRUE(core_->GiveUp());
  // A stored upload starts the count again.
  pb::EdgeDown ok;
  ok.mutable_ack()->set_batch(kMaxRefusalsInARow + 1);
  core_->OnMessage(ok, 1000, &out);
  EXPECT_FALSE(core_->GiveUp());
}

TEST_F(AgentCoreTest, ARestartedCoreRunsWithTheDesiredTwinItApplied) {
  AgentCore::Out out;
  core_->Welcomed(0, &out);
  pb::EdgeDown desired;
  desired.mutable_desired()->set_desired_json(R"({"sample_ms": 250})");
  desired.mutable_desired()->set_version(4);
  core_->OnMessage(desired, 1000, &out);
  EXPECT_EQ(core_->sample_ms(), 250);
  AgentCore again(AgentCoreOptions{}, store_.get(), {}, &actuator_);
  EXPECT_EQ(again.sample_ms(), 250);
}

TEST_F(AgentCoreTest, TheTwinSetsTheBatchesAndSaysWhatItRefused) {
  AgentCore::Out out;
  core_->Welcomed(0, &out);
  pb::EdgeDown desired;
  desired.mutable_desired()->set_desired_json(
      R"({"batch_max": 2, "batch_ms": 0, "fan": 1})");
  desired.mutable_desired()->set_version(2);
  out.clear();
  core_->OnMessage(desired, 1000, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].twin().reported_json(),
            R"({"sample_ms":10,"batch_ms":0,"batch_max":2,)"
            R"("refused":{"fan":"not a setting of this agent"}})");
  EXPECT_EQ(out[0].twin().desired_version(), 2u);
  // Five readings go at once (batch_ms 0) in uploads of two.
  Produce(5, 1000);
  out.clear();
  ASSERT_TRUE(core_->Flush(1000, &out));
  ASSERT_EQ(Uploads(out), 3);
  EXPECT_EQ(out[0].upload().readings_size(), 2);
  EXPECT_EQ(out[2].upload().readings_size(), 1);
}

}  // namespace
}  // namespace raftsql::edge
