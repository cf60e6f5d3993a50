#include "tools/process.h"

#include <set>

#include "gtest/gtest.h"

namespace raftsql::tools {
namespace {

TEST(FreePort, NeverReturnsAPortTwiceInOneProcess) {
  std::set<int> seen;
  for (int i = 0; i < 2000; ++i) {
    const int port = FreePort();
    ASSERT_GT(port, 0);
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " again";
  }
}

}  // namespace
}  // namespace raftsql::tools
