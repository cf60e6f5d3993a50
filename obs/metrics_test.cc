#include "obs/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace raftsql::obs {
namespace {

TEST(Histogram, EachObservationLandsInTheFirstBucketThatHoldsIt) {
  Histogram h;
  h.Observe(0);      // <= 50 µs
  h.Observe(50e-6);  // <= 50 µs (bounds are inclusive)
  h.Observe(51e-6);  // <= 100 µs
  h.Observe(0.004);  // <= 6.4 ms
  h.Observe(100);    // +Inf
  const Histogram::Counts c = h.Read();
  EXPECT_EQ(c.count, 5u);
  EXPECT_EQ(c.buckets[0], 2u);
  EXPECT_EQ(c.buckets[1], 1u);
  EXPECT_EQ(c.buckets[7], 1u);  // 50 µs * 2^7 = 6.4 ms
  EXPECT_EQ(c.buckets[Histogram::kBounds], 1u);
  EXPECT_NEAR(c.sum_seconds, 100.004101, 1e-6);
  EXPECT_DOUBLE_EQ(Histogram::UpperBound(0), 50e-6);
  EXPECT_NEAR(Histogram::UpperBound(Histogram::kBounds - 1), 6.5536, 1e-9);
}

TEST(Histogram, ConcurrentObservationsAreAllCounted) {
  Histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10'000; ++i) h.Observe(1e-3);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(h.Read().count, 40'000u);
  EXPECT_NEAR(h.Read().sum_seconds, 40.0, 1e-6);
}

TEST(RequestMetrics, CountsByProtocolMethodAndCode) {
  RequestMetrics m;
  m.Record("grpc", "/raftsql.v1.DatabaseService/Execute", "OK", 0.001);
  m.Record("grpc", "/raftsql.v1.DatabaseService/Execute", "OK", 0.002);
  m.Record("http", "POST /db/execute", "503", 0.5);
  const auto read = m.Read();
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(
      read.at({"grpc", "/raftsql.v1.DatabaseService/Execute", "OK"}).count, 2u);
  EXPECT_EQ(read.at({"http", "POST /db/execute", "503"}).count, 1u);
}

}  // namespace
}  // namespace raftsql::obs
