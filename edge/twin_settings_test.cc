#include "edge/twin_settings.h"

#include <sqlite3.h>

#include "gtest/gtest.h"

namespace raftsql::edge {
namespace {

class TwinSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
  }
  void TearDown() override { sqlite3_close(db_); }
  TwinSettings Apply(const std::string& json) {
    return ApplyDesired(db_, defaults_, json);
  }
  sqlite3* db_ = nullptr;
  TwinSettings defaults_;  // 100 ms, 200 ms, 100 readings.
};

TEST_F(TwinSettingsTest, EachKnownSettingAppliesWithinItsRange) {
  const TwinSettings s =
      Apply(R"({"sample_ms": 250, "batch_ms": 0, "batch_max": 1000})");
  EXPECT_EQ(s.sample_ms, 250);
  EXPECT_EQ(s.batch_ms, 0);
  EXPECT_EQ(s.batch_max, 1000u);
  EXPECT_TRUE(s.refused.empty());
  EXPECT_EQ(ReportedJson(db_, s),
            R"({"sample_ms":250,"batch_ms":0,"batch_max":1000})");
}

TEST_F(TwinSettingsTest, WhatItCannotApplyIsReportedWithTheReason) {
  const TwinSettings s =
      Apply(R"({"sample_ms": 5, "batch_max": "many", "batch_ms": 1.5,)"
            R"( "fan \"speed\"": 3, "batch_ms2": 1})");
  // Nothing applied...
  EXPECT_EQ(s.sample_ms, 100);
  EXPECT_EQ(s.batch_ms, 200);
  EXPECT_EQ(s.batch_max, 100u);
  ASSERT_EQ(s.refused.size(), 5u);
  EXPECT_EQ(s.refused[0].first, "sample_ms");
  EXPECT_EQ(s.refused[0].second, "an integer from 10 to 3600000");
  // ... and each named, its key quoted as JSON.
  EXPECT_EQ(ReportedJson(db_, s),
            R"({"sample_ms":100,"batch_ms":200,"batch_max":100,"refused":{)"
            R"("sample_ms":"an integer from 10 to 3600000",)"
            R"("batch_max":"an integer from 1 to 1000",)"
            R"("batch_ms":"an integer from 0 to 600000",)"
            R"("fan \"speed\"":"not a setting of this agent",)"
            R"("batch_ms2":"not a setting of this agent"}})");
}

TEST_F(TwinSettingsTest, AKeyRemovedFromTheDocumentReturnsToTheDefault) {
  EXPECT_EQ(Apply(R"({"sample_ms": 250})").sample_ms, 250);
  EXPECT_EQ(Apply(R"({})").sample_ms, 100);
}

TEST_F(TwinSettingsTest, ADocumentThatIsNoObjectIsRefusedWhole) {
  for (const char* bad : {"[1, 2]", "12", "{not json"}) {
    const TwinSettings s = Apply(bad);
    ASSERT_EQ(s.refused.size(), 1u) << bad;
    EXPECT_EQ(s.refused[0].first, "");
    EXPECT_EQ(s.sample_ms, 100);
  }
}

}  // namespace
}  // namespace raftsql::edge
