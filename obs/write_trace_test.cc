#include "obs/write_trace.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::obs {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(WriteTrace, KeepsNothingUntilEnabledThenWritesEachStageByIndex) {
  const std::string path = ::testing::TempDir() + "/write_trace.txt";
  TraceWrite(7, WriteStage::kProposed);  // Off: not kept.
  EXPECT_TRUE(FlushWriteTrace().ok());   // Off: writes nothing.
  EXPECT_TRUE(Lines(path).empty());
  EnableWriteTrace(path);
  TraceWrite(7, WriteStage::kProposed, 1000);
  TraceWrite(0, WriteStage::kApplied);  // Index 0 is no write: not kept.
  TraceWrite(7, WriteStage::kAnswered, 2500);
  ASSERT_TRUE(FlushWriteTrace().ok());
  EXPECT_EQ(Lines(path),
            (std::vector<std::string>{"# dropped 0", "7 proposed 1000",
                                      "7 answered 2500"}));
}

TEST(WriteTrace, EveryStageHasAName) {
  for (int s = 0; s < static_cast<int>(WriteStage::kCount); ++s) {
    EXPECT_STRNE(WriteStageName(static_cast<WriteStage>(s)), "?");
  }
}

}  // namespace
}  // namespace raftsql::obs
