#include "edge/edge_store.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "edge/actuator.h"
#include "edge/sensors.h"
#include "gtest/gtest.h"

namespace raftsql::edge {
namespace {

Reading R(double v = 1) { return Reading{"temp", v, "C", 5, 0}; }

class EdgeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/raftsql-edge-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.path = dir_ + "/edge.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<EdgeStore> Open() {
    absl::StatusOr<std::unique_ptr<EdgeStore>> s = EdgeStore::Open(options_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static void Add(EdgeStore& s, int n, int64_t now = 0) {
    for (int i = 0; i < n; ++i) {
      Reading r = R(i);
      ASSERT_TRUE(s.Append(r, now).ok());
    }
  }

  std::string dir_;
  StoreOptions options_;
};

TEST_F(EdgeStoreTest, ReadingsGetSequencesAndLeaveWhenAcked) {
  auto s = Open();
  Add(*s, 5);
  EXPECT_EQ(s->last_sequence(), 5u);
  EXPECT_EQ(s->oldest(), 1u);
  auto p = s->Pending(2, 10);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].sequence, 3u);
  ASSERT_TRUE(s->Acked(3).ok());
  EXPECT_EQ(s->backlog(), 2u);
  EXPECT_EQ(s->oldest(), 4u);
  ASSERT_TRUE(s->Acked(5).ok());
  EXPECT_EQ(s->backlog(), 0u);
  EXPECT_EQ(s->oldest(), 6u);
  EXPECT_EQ(s->bytes(), 0u);
}

TEST_F(EdgeStoreTest, EverythingSurvivesAReopen) {
  std::string incarnation;
  {
    auto s = Open();
    incarnation = s->incarnation();
    Add(*s, 4);
    ASSERT_TRUE(s->Acked(4).ok());
    Add(*s, 2);
  }
  auto s = Open();
  EXPECT_EQ(s->incarnation(), incarnation);
  EXPECT_EQ(s->backlog(), 2u);
  EXPECT_EQ(s->oldest(), 5u);
  EXPECT_EQ(s->counters().stored, 6u);
  Add(*s, 1);
  EXPECT_EQ(s->last_sequence(), 7u);
}

TEST_F(EdgeStoreTest, AWipedStoreIsANewIncarnation) {
  std::string first;
  {
    auto s = Open();
    first = s->incarnation();
    Add(*s, 3);
  }
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directory(dir_);
  auto s = Open();
  EXPECT_NE(s->incarnation(), first);
  Add(*s, 1);
  EXPECT_EQ(s->last_sequence(), 1u);
}

TEST_F(EdgeStoreTest, AFullBufferDropsTheOldestAndCountsThem) {
  options_.max_bytes = 10 * ReadingBytes(R());
  auto s = Open();
  Add(*s, 25);
  EXPECT_LE(s->bytes(), options_.max_bytes);
  EXPECT_EQ(s->counters().dropped_full + s->backlog(), 25u);
  EXPECT_GT(s->counters().dropped_full, 0u);
  EXPECT_EQ(s->oldest(), 25 - s->backlog() + 1);
  EXPECT_EQ(s->last_sequence(), 25u);
}

TEST_F(EdgeStoreTest, AFullBufferRefusesTheNewWithRejectNew) {
  options_.max_bytes = 10 * ReadingBytes(R());
  options_.policy = FullPolicy::kRejectNew;
  auto s = Open();
  Add(*s, 12);
  EXPECT_EQ(s->backlog(), 10u);
  EXPECT_EQ(s->counters().rejected_full, 2u);
  EXPECT_EQ(s->last_sequence(), 10u);  // Refused ones take no sequence.
}

TEST_F(EdgeStoreTest, ReadingsPastTheirAgeAreDropped) {
  options_.max_age_ms = 1000;
  auto s = Open();
  Add(*s, 3, /*now=*/0);
  Add(*s, 2, /*now=*/900);
  ASSERT_TRUE(s->DropExpired(1500).ok());
  EXPECT_EQ(s->backlog(), 2u);
  EXPECT_EQ(s->counters().dropped_age, 3u);
  EXPECT_EQ(s->oldest(), 4u);
}

TEST_F(EdgeStoreTest, RefusedReadingsLeaveAndAreCounted) {
  auto s = Open();
  Add(*s, 5);
  ASSERT_TRUE(s->Refused(1, 2).ok());
  EXPECT_EQ(s->oldest(), 3u);
  EXPECT_EQ(s->counters().refused_by_hub, 2u);
}

TEST_F(EdgeStoreTest, ACommandRunsOnceAcrossRedeliveryAndRestart) {
  SimulatedActuator actuator;
  int runs = 0;
  auto run = [&](sqlite3* db) {
    ++runs;
    return actuator.Run("set", R"({"speed": 1200})", db);
  };
  {
    auto s = Open();
    auto o = s->ExecuteOnce("c1", run);
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->result, CommandStatus::kDone);
    EXPECT_EQ(SimulatedActuator::Get(s->db(), "speed"), "1200");
    ASSERT_TRUE(s->ExecuteOnce("c1", run).ok());
  }
  auto s = Open();
  auto again = s->ExecuteOnce("c1", run);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->result, CommandStatus::kDone);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(*s->Executed(), 1);
}

TEST_F(EdgeStoreTest, UnknownCommandsAreRejected) {
  SimulatedActuator actuator;
  auto s = Open();
  auto o = s->ExecuteOnce(
      "c1", [&](sqlite3* db) { return actuator.Run("explode", "{}", db); });
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->result, CommandStatus::kRejected);
}

TEST(SimulatedSensor, TheSameSeedGivesTheSameReadings) {
  SimulatedSensorOptions o;
  o.period_ms = 100;
  o.spike_chance = 0.05;
  o.dropout_chance = 0.02;
  SimulatedSensor a(o, 7), b(o, 7), c(o, 8);
  std::vector<Reading> ra = a.Poll(0), rb = b.Poll(0), rc = c.Poll(0);
  ra = a.Poll(100'000);
  rb = b.Poll(100'000);
  rc = c.Poll(100'000);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].value, rb[i].value);
  EXPECT_GT(a.spikes(), 0u);
  EXPECT_GT(a.dropped(), 0u);
  EXPECT_LT(ra.size(), 1000u);  // Dropouts left gaps.
  bool differs = ra.size() != rc.size();
  for (size_t i = 0; !differs && i < ra.size(); ++i) {
    differs = ra[i].value != rc[i].value;
  }
  EXPECT_TRUE(differs);
}

TEST(CsvSource, ParsesReadingsAndSkipsTheRest) {
  std::istringstream in(
      "# comment\n"
      "temp,21.5,C,1000\n"
      "hum, 40 ,%\n"
      "bad\n"
      "temp,nan,C\n"
      "temp,inf\n"
      "pressure,1013\n");
  CsvSource src(&in);
  std::vector<Reading> r = src.Poll(77);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].device_time_ms, 1000);
  EXPECT_EQ(r[1].sensor, "hum");
  EXPECT_EQ(r[1].value, 40);
  EXPECT_EQ(r[1].device_time_ms, 77);
  EXPECT_EQ(r[2].unit, "");
  EXPECT_EQ(src.skipped(), 3u);
  EXPECT_TRUE(src.Done());
}

TEST_F(EdgeStoreTest, TheDesiredTwinSurvivesARestart) {
  {
    auto s = Open();
    ASSERT_TRUE(s->SetTwin(3, R"({"sample_ms":250})").ok());
  }
  auto s = Open();
  EXPECT_EQ(s->twin_version(), 3u);
  EXPECT_EQ(s->twin_desired(), R"({"sample_ms":250})");
}

TEST_F(EdgeStoreTest, OneProcessOwnsTheStore) {
  auto s = Open();
  Add(*s, 1);
  StoreOptions second = options_;
  second.busy_timeout_ms = 0;
  absl::StatusOr<std::unique_ptr<EdgeStore>> other = EdgeStore::Open(second);
  // Exclusive locking: the second opener cannot read the buffer.
  EXPECT_FALSE(other.ok());
}

TEST_F(EdgeStoreTest, MakeDurableCoversEverySequenceStored) {
  auto s = Open();
  EXPECT_EQ(s->durable_sequence(), 0u);
  Add(*s, 4);
  EXPECT_EQ(s->durable_sequence(), 0u);
  ASSERT_TRUE(s->MakeDurable().ok());
  EXPECT_EQ(s->durable_sequence(), 4u);
  Add(*s, 1);
  EXPECT_EQ(s->durable_sequence(), 4u);
}

TEST_F(EdgeStoreTest, AStoreThatCannotBeReadIsMovedAsideAndReplaced) {
  std::string first;
  {
    auto s = Open();
    first = s->incarnation();
  }
  // A damaged card: the file's first page is garbage.
  {
    std::FILE* f = std::fopen(options_.path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    const std::string junk(4096, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  options_.replace_corrupt = false;
  absl::StatusOr<std::unique_ptr<EdgeStore>> refused =
      EdgeStore::Open(options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  options_.replace_corrupt = true;
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_NE(s->incarnation(), first);
  EXPECT_EQ(s->last_sequence(), 0u);
  EXPECT_TRUE(std::filesystem::exists(options_.path + ".corrupt"));
}

}  // namespace
}  // namespace raftsql::edge
