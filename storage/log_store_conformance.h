// One conformance suite for every LogStore implementation (RocksDB in
// production, SimDisk in the simulator). Instantiate it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(RocksDb, LogStoreConformance,
//                            ::testing::Values(&MakeRocksDbHarness));
#ifndef RAFTSQL_STORAGE_LOG_STORE_CONFORMANCE_H_
#define RAFTSQL_STORAGE_LOG_STORE_CONFORMANCE_H_

#include <functional>
#include <memory>

#include "core/interfaces.h"
#include "gtest/gtest.h"

namespace raftsql::storage {

class LogStoreHarness {
 public:
  virtual ~LogStoreHarness() = default;
  // A fresh store bootstrapped with voters {1, 2, 3}.
  virtual core::LogStore& store() = 0;
  // Runs whatever completes submitted writes (e.g. the simulator's queue).
  virtual void Settle() = 0;
  // Closes the store and opens it again from what is durable.
  virtual void Reopen() = 0;
};

using HarnessFactory = std::unique_ptr<LogStoreHarness> (*)();

class LogStoreConformance : public ::testing::TestWithParam<HarnessFactory> {
 protected:
  void SetUp() override { h_ = GetParam()(); }
  // Submits and settles; returns the completion status.
  absl::Status Write(core::LogWrite w);
  std::unique_ptr<LogStoreHarness> h_;
};

}  // namespace raftsql::storage

#endif  // RAFTSQL_STORAGE_LOG_STORE_CONFORMANCE_H_
