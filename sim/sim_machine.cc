#include "sim/sim_machine.h"

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sim/kv_state_machine.h"
#include "sim/sim_fs.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sim {
namespace {

class KvMachine final : public SimMachine {
 public:
  core::StateMachine& machine() override { return kv_; }
  KvStateMachine& kv() { return kv_; }
  int64_t Get(uint64_t key) override { return kv_.Get(key); }
  uint64_t LastOp(uint64_t client) override { return kv_.LastOp(client); }
  uint64_t Digest() override { return kv_.Digest(); }
  std::optional<AppliedOp> Interpret(const core::Entry& e,
                                     const std::string& result) override {
    if (e.type != core::EntryType::kNormal || e.data.empty())
      return std::nullopt;
    std::optional<KvCommand> cmd = KvCommand::Decode(e.data);
    CHECK(cmd.has_value());
    // kDuplicate covers retries of an applied op and stale ops alike; the
    // simulator only answers a client still waiting on that very op.
    return AppliedOp{cmd->client, cmd->op, !result.empty()};
  }
  std::string EncodeWrite(uint64_t client, uint64_t op, uint64_t key,
                          int64_t value, uint64_t, uint64_t) override {
    return KvCommand{client, op, key, value}.Encode();
  }

 private:
  KvStateMachine kv_;
};

// The register and bank workloads as SQL on the real SqliteStateMachine.
class SqlMachine final : public SimMachine {
 public:
  static constexpr uint64_t kCheckpointEntries = 32;

  SqlMachine(bool atomic_transfers, const std::string& path, const char* vfs,
             sm::RenameFile rename)
      : atomic_transfers_(atomic_transfers) {
    sm::SqliteOptions o;
    // Often enough that every run compares several (CheckFinalState).
    o.divergence_checkpoint_entries = kCheckpointEntries;
    if (vfs != nullptr) {
      o.path = path;
      o.vfs = vfs;
      o.rename_file = rename != nullptr ? std::move(rename) : SimFsRename;
    }
    absl::StatusOr<std::unique_ptr<sm::SqliteStateMachine>> s =
        sm::SqliteStateMachine::Open(o);
    CHECK(s.ok());
    sql_ = std::move(*s);
  }
  core::StateMachine& machine() override { return *sql_; }

  int64_t Get(uint64_t key) override {
    absl::StatusOr<sm::QueryResult> q = sql_->Query(
        sm::Statement{"SELECT v FROM reg WHERE k = ?",
                      {sm::Value::Integer(static_cast<int64_t>(key))},
                      {}});
    if (!q.ok() || q->rows.empty()) return 0;  // No table yet, or no row.
    return q->rows[0][0].integer;
  }

  uint64_t LastOp(uint64_t client) override {
    return sql_->SessionSequence(client).value_or(0);
  }

  uint64_t Digest() override { return sql_->divergence_hash(); }
  std::vector<std::pair<uint64_t, uint64_t>> Checkpoints() override {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const sm::Checkpoint& c : sql_->Checkpoints()) {
      out.emplace_back(c.index, c.hash);
    }
    return out;
  }

  std::optional<AppliedOp> Interpret(const core::Entry& e,
                                     const std::string& result) override {
    if (e.type != core::EntryType::kNormal || e.data.empty())
      return std::nullopt;
    absl::StatusOr<sm::Command> cmd = sm::Command::Decode(e.data);
    absl::StatusOr<sm::CommandResult> r = sm::CommandResult::Decode(result);
    CHECK(cmd.ok() && r.ok());
    bool ok = !r->statements.empty();
    for (const sm::StatementResult& s : r->statements) ok = ok && s.status.ok();
    return AppliedOp{cmd->session_id, cmd->sequence, ok};
  }

  std::string EncodeWrite(uint64_t client, uint64_t op, uint64_t key,
                          int64_t value, uint64_t now_ms,
                          uint64_t seed) override {
    sm::Command c = Base(client, op, now_ms, seed);
    c.statements.push_back(sm::Statement{
        "CREATE TABLE IF NOT EXISTS reg(k INTEGER PRIMARY KEY, v INTEGER)",
        {},
        {}});
    c.statements.push_back(
        sm::Statement{"INSERT INTO reg(k, v) VALUES (?1, ?2) "
                      "ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                      {sm::Value::Integer(static_cast<int64_t>(key)),
                       sm::Value::Integer(value)},
                      {}});
    return c.Encode();
  }

  bool HasBank() const override { return true; }

  std::string EncodeTransfer(uint64_t client, uint64_t op, uint64_t from,
                             uint64_t to, int64_t amount, uint64_t now_ms,
                             uint64_t seed) override {
    sm::Command c = Base(client, op, now_ms, seed);
    // All or nothing: an overdraft fails the CHECK and rolls back both legs.
    c.transaction = atomic_transfers_;
    c.statements.push_back(
        sm::Statement{"CREATE TABLE IF NOT EXISTS bank(id INTEGER PRIMARY KEY, "
                      "balance INTEGER NOT NULL CHECK (balance >= 0))",
                      {},
                      {}});
    c.statements.push_back(sm::Statement{
        absl::StrCat("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 "
                     "FROM n WHERE i < ",
                     kBankAccounts - 1,
                     ") INSERT OR IGNORE INTO bank SELECT i, ", kBankOpening,
                     " FROM n"),
        {},
        {}});
    c.statements.push_back(sm::Statement{
        "UPDATE bank SET balance = balance - :amount WHERE id = :from",
        {},
        {{"amount", sm::Value::Integer(amount)},
         {"from", sm::Value::Integer(static_cast<int64_t>(from))}}});
    c.statements.push_back(sm::Statement{
        "UPDATE bank SET balance = balance + :amount WHERE id = :to",
        {},
        {{"amount", sm::Value::Integer(amount)},
         {"to", sm::Value::Integer(static_cast<int64_t>(to))}}});
    return c.Encode();
  }

  std::string EncodeAppend(uint64_t client, uint64_t op, uint64_t key,
                           int64_t value, uint64_t now_ms,
                           uint64_t seed) override {
    sm::Command c = Base(client, op, now_ms, seed);
    c.statements.push_back(sm::Statement{
        "CREATE TABLE IF NOT EXISTS list(seq INTEGER PRIMARY KEY, k INTEGER, "
        "v INTEGER)",
        {},
        {}});
    c.statements.push_back(
        sm::Statement{"INSERT INTO list(k, v) VALUES (?, ?)",
                      {sm::Value::Integer(static_cast<int64_t>(key)),
                       sm::Value::Integer(value)},
                      {}});
    // Now and then the file is rebuilt after the batch (sm/vacuum.h: at
    // once on the simulator's disk), under the same faults as the rest.
    if (op % kVacuumEvery == kVacuumEvery - 1) {
      c.statements.push_back(sm::Statement{"VACUUM", {}, {}});
    }
    return c.Encode();
  }

  std::vector<int64_t> ReadList(uint64_t key) override {
    absl::StatusOr<sm::QueryResult> q = sql_->Query(
        sm::Statement{"SELECT v FROM list WHERE k = ? ORDER BY seq",
                      {sm::Value::Integer(static_cast<int64_t>(key))},
                      {}});
    std::vector<int64_t> out;
    if (!q.ok()) return out;  // No list table yet.
    for (const auto& row : q->rows) out.push_back(row[0].integer);
    return out;
  }

  absl::StatusOr<sm::QueryResult> Query(const sm::Statement& s) override {
    return sql_->Query(s);
  }

  std::optional<BankTotals> ReadBank() override {
    absl::StatusOr<sm::QueryResult> q = sql_->Query(
        sm::Statement{"SELECT count(*), total(balance) FROM bank", {}, {}});
    if (!q.ok()) return BankTotals{};  // No bank yet.
    return BankTotals{q->rows[0][0].integer,
                      static_cast<int64_t>(q->rows[0][1].real)};
  }

 private:
  static sm::Command Base(uint64_t client, uint64_t op, uint64_t now_ms,
                          uint64_t seed) {
    sm::Command c;
    c.session_id = client;
    c.sequence = op;
    c.timestamp_ms = static_cast<int64_t>(now_ms);
    c.random_seed = seed;
    return c;
  }

  static constexpr uint64_t kVacuumEvery = 64;  // A client's appends.
  const bool atomic_transfers_;
  std::unique_ptr<sm::SqliteStateMachine> sql_;
};

}  // namespace

std::unique_ptr<SimMachine> NewKvMachine(uint64_t pause_every, int pause_ticks,
                                         uint64_t* pauses) {
  auto m = std::make_unique<KvMachine>();
  m->kv().PauseApplies(pause_every, pause_ticks, pauses);
  return m;
}
std::unique_ptr<SimMachine> NewSqlMachine(bool atomic_transfers,
                                          const std::string& path,
                                          const char* vfs,
                                          sm::RenameFile rename) {
  return std::make_unique<SqlMachine>(atomic_transfers, path, vfs,
                                      std::move(rename));
}

}  // namespace raftsql::sim
