// The replicated state machine as the simulator's workload sees it: a
// key/register store with client sessions, and (for SQL) a bank. Two
// implementations: the in-memory KvStateMachine, and the real
// SqliteStateMachine (in-memory SQLite) running the same workload as SQL.
#ifndef RAFTSQL_SIM_SIM_MACHINE_H_
#define RAFTSQL_SIM_SIM_MACHINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/interfaces.h"
#include "sm/command.h"
#include "sm/file_swap.h"

namespace raftsql::sim {

// What an applied entry meant for a client operation.
struct AppliedOp {
  uint64_t client = 0;
  uint64_t op = 0;
  bool took_effect = false;  // false: refused (stale retry, failed transfer)
};

struct BankTotals {
  int64_t accounts = 0;
  int64_t total = 0;
};

// The bank: kBankAccounts accounts of kBankOpening each; transfers keep the
// total constant.
inline constexpr int64_t kBankAccounts = 10;
inline constexpr int64_t kBankOpening = 100;

class SimMachine {
 public:
  virtual ~SimMachine() = default;
  virtual core::StateMachine& machine() = 0;
  virtual int64_t Get(uint64_t key) = 0;         // 0 if never written
  virtual uint64_t LastOp(uint64_t client) = 0;  // session high-water mark
  virtual uint64_t Digest() = 0;
  // The divergence hash at recent checkpoints, (index, hash) oldest first
  // (SQL only: sm/divergence.h).
  virtual std::vector<std::pair<uint64_t, uint64_t>> Checkpoints() {
    return {};
  }
  virtual std::optional<AppliedOp> Interpret(const core::Entry& e,
                                             const std::string& result) = 0;
  virtual std::string EncodeWrite(uint64_t client, uint64_t op, uint64_t key,
                                  int64_t value, uint64_t now_ms,
                                  uint64_t seed) = 0;
  // The bank, where supported (nullopt: the machine has no bank).
  virtual bool HasBank() const { return false; }
  virtual std::string EncodeTransfer(uint64_t, uint64_t, uint64_t, uint64_t,
                                     int64_t, uint64_t, uint64_t) {
    return "";
  }
  virtual std::optional<BankTotals> ReadBank() { return std::nullopt; }
  // Append-only lists (SQL only): append a value to list `key`, read it.
  virtual std::string EncodeAppend(uint64_t, uint64_t, uint64_t, int64_t,
                                   uint64_t, uint64_t) {
    return "";
  }
  virtual std::vector<int64_t> ReadList(uint64_t) { return {}; }
  // A local read of any SQL (SQL only): the simulated edges' hub sessions.
  virtual absl::StatusOr<sm::QueryResult> Query(const sm::Statement&) {
    return absl::UnimplementedError("not a SQL machine");
  }
};

// Pausing applies is off unless `pause_every` > 0 (KvStateMachine's
// PauseApplies).
std::unique_ptr<SimMachine> NewKvMachine(uint64_t pause_every = 0,
                                         int pause_ticks = 0,
                                         uint64_t* pauses = nullptr);
// `atomic_transfers` false breaks the bank on purpose (a self-test): the two
// legs of a transfer no longer commit or fail together.
// In memory, or (with a path and a VFS) in files on a simulated disk, whose
// renames go through `rename` (SimFsRename if null).
std::unique_ptr<SimMachine> NewSqlMachine(bool atomic_transfers = true,
                                          const std::string& path = "",
                                          const char* vfs = nullptr,
                                          sm::RenameFile rename = nullptr);

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIM_MACHINE_H_
