// A linearizability checker for a register history (Wing & Gong's search with
// Lowe's just-in-time linearization and the memoization of porcupine: a
// (linearized set, state) pair already explored is never explored again).
// Histories are split per key (P-compositionality: a history is linearizable
// iff every key's sub-history is).
#ifndef RAFTSQL_SIM_LINEARIZABILITY_H_
#define RAFTSQL_SIM_LINEARIZABILITY_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace raftsql::sim {

// An operation with an unknown outcome (a timed-out write) has
// ret == kNeverReturned: it may take effect at any point after its call, or
// never.
inline constexpr uint64_t kNeverReturned = std::numeric_limits<uint64_t>::max();

struct RegisterOp {
  uint64_t client = 0;
  bool is_write = false;
  int64_t value = 0;  // Written, or observed by the read.
  uint64_t call = 0;
  uint64_t ret = 0;
};

enum class CheckResult { kOk, kIllegal, kUnknown };
const char* CheckResultName(CheckResult r);

// Checks one register (initial value 0), whose writes write distinct
// values. `max_steps` bounds the search; beyond it the answer is kUnknown.
// Operations with no outcome are pruned first, which decides nothing
// differently: a read with no answer goes; so does a write nobody read
// (it may never have taken effect); a write somebody read took effect
// before the first read that saw it returned, so that is its return.
CheckResult CheckRegister(const std::vector<RegisterOp>& ops,
                          uint64_t max_steps);

struct HistoryReport {
  CheckResult result = CheckResult::kOk;
  uint64_t key = 0;  // The first key that was not kOk.
  size_t operations = 0;
};

HistoryReport CheckHistory(
    const std::map<uint64_t, std::vector<RegisterOp>>& by_key,
    uint64_t max_steps_per_key);

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_LINEARIZABILITY_H_
