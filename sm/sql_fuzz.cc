// libFuzzer target: statements from a client, validated and then applied to
// two in-memory replicas (one in a batch, one entry by entry) under a small
// write budget: no crash, no hang (the budget bounds every write), the same
// results and the same divergence hash on both. Built and run by
// tests/fuzz_test.sh.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "sm/sqlite_state_machine.h"
#include "sm/write_budget.h"

namespace {

using namespace raftsql;

std::unique_ptr<sm::SqliteStateMachine> Replica() {
  auto opened = sm::SqliteStateMachine::Open(sm::SqliteOptions{});
  CHECK(opened.ok());
  std::unique_ptr<sm::SqliteStateMachine> r = std::move(*opened);
  const std::vector<std::string> setup = {
      sm::SettingChange{std::string(sm::kSettingVmSteps), 200'000, 0}.Encode(),
      sm::SettingChange{std::string(sm::kSettingValueBytes), 1 << 20, 0}
          .Encode(),
      sm::SettingChange{std::string(sm::kSettingRowBytes), 1 << 20, 0}.Encode(),
  };
  uint64_t index = 0;
  for (const std::string& s : setup) {
    r->Apply(core::Entry{1, ++index, core::EntryType::kNormal, s});
  }
  sm::Command create;
  create.statements.push_back(
      {"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c)", {}, {}});
  r->Apply(core::Entry{1, ++index, core::EntryType::kNormal, create.Encode()});
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static auto* validator = Replica().release();
  std::unique_ptr<sm::SqliteStateMachine> a = Replica(), b = Replica();
  std::vector<core::Entry> batch;
  uint64_t index = a->AppliedIndex();
  for (int e = 0; e < 4 && in.remaining_bytes() > 0; ++e) {
    sm::Command cmd;
    cmd.transaction = in.ConsumeBool();
    cmd.timestamp_ms = in.ConsumeIntegral<int64_t>();
    cmd.random_seed = in.ConsumeIntegral<uint64_t>();
    const int statements = in.ConsumeIntegralInRange<int>(1, 3);
    for (int s = 0; s < statements; ++s) {
      sm::Statement st;
      st.sql = in.ConsumeRandomLengthString(256);
      if (in.ConsumeBool()) {
        st.positional.push_back(sm::Value::Integer(in.ConsumeIntegral<int>()));
      }
      cmd.statements.push_back(std::move(st));
    }
    // What the server does before proposing; refused commands never log.
    if (!validator->Validate(cmd).ok()) continue;
    batch.push_back(
        core::Entry{1, ++index, core::EntryType::kNormal, cmd.Encode()});
  }
  if (batch.empty()) return 0;
  std::vector<std::string> ra = a->ApplyBatch(batch);
  std::vector<std::string> rb;
  for (const core::Entry& e : batch) rb.push_back(b->Apply(e));
  CHECK(ra == rb);
  CHECK(a->divergence_hash() == b->divergence_hash());
  CHECK(a->AppliedIndex() == index);
  return 0;
}
