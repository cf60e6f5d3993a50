#include "obs/log.h"

#include <gtest/gtest.h>

namespace raftsql::obs {
namespace {

TEST(Log, JsonLinesAreOneObjectWithEscapedText) {
  EXPECT_EQ(JsonLine("2026-12-06T11:30:39.123Z", Level::kWarn, "election",
                     "node 1 \"leads\"\n", {{"node", 1}, {"why", "a\tb"}}),
            "{\"ts\":\"2026-12-06T11:30:39.123Z\",\"level\":\"warn\","
            "\"event\":\"election\",\"msg\":\"node 1 \\\"leads\\\"\\n\","
            "\"node\":1,\"why\":\"a\\tb\"}");
}

TEST(Log, SetLogRefusesWhatItDoesNotKnow) {
  EXPECT_TRUE(SetLog("debug", "json").ok());
  EXPECT_TRUE(SetLog("info", "text").ok());
  EXPECT_EQ(SetLog("loud", "text").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetLog("info", "xml").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace raftsql::obs
