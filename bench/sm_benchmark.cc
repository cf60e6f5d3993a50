// SqliteStateMachine apply throughput against raw SQLite doing the same
// inserts in one process with the same settings (WAL, synchronous=NORMAL,
// one transaction per batch). BM_StateMachineApply and BM_RawSqlite give
// each side's rows/s; BM_ApplyVsRawSqlite alternates one batch of each, so
// that both meet the same moment of a shared host, and reports the ratio.
//
//   ./bazelw run -c opt //bench:sm_benchmark
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {
namespace {

constexpr int kBatch = 64;  // Entries per apply batch / raw transaction.
// Both sides insert integers from here: of one stored size (4 bytes).
constexpr int64_t kFirstValue = 1'000'000;

std::string TempPath() {
  char dir[] = "/tmp/raftsql-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  return std::string(dir) + "/db";
}

std::string InsertSql(int rows) {
  std::string sql = "INSERT INTO t(a, b) VALUES ";
  for (int i = 0; i < rows; ++i) sql += i == 0 ? "(?, ?)" : ", (?, ?)";
  return sql;
}

// The state machine side: a file database with table t, fed batches of
// kBatch entries of `rows`-row INSERTs. Encoding happens on the leader at
// proposal time, not in apply: the batch is encoded once, and each
// iteration gives its entries the next indexes (nothing to pause the clock
// for, which would leave the checkpoint thread working off the clock).
class MachineSide {
 public:
  MachineSide(int rows, bool background_checkpoints, bool change_log = true,
              int entries = kBatch) {
    SqliteOptions options{path_};
    options.background_checkpoints = background_checkpoints;
    if (!change_log) options.change_log_bytes = 0;
    auto sm = SqliteStateMachine::Open(options);
    if (!sm.ok()) std::abort();
    sm_ = std::move(*sm);
    Command create;
    create.statements.push_back(
        Statement{"CREATE TABLE t(a INTEGER, b TEXT)", {}, {}});
    sm_->Apply(
        core::Entry{1, ++index_, core::EntryType::kNormal, create.Encode()});
    const std::string sql = InsertSql(rows);
    int64_t value = kFirstValue;
    for (int e = 0; e < entries; ++e) {
      Command c;
      Statement st{sql, {}, {}};
      for (int r = 0; r < rows; ++r) {
        st.positional.push_back(Value::Integer(value++));
        st.positional.push_back(Value::Text("payload-value-0123456789"));
      }
      c.statements.push_back(std::move(st));
      batch_.push_back(core::Entry{1, 0, core::EntryType::kNormal, c.Encode()});
    }
    rows_per_batch_ = static_cast<int64_t>(entries) * rows;
  }
  ~MachineSide() {
    sm_.reset();
    std::filesystem::remove_all(path_.substr(0, path_.rfind('/')));
  }
  // Applies the next batch, into one results vector as the Raft loop does.
  void ApplyBatch() {
    for (core::Entry& e : batch_) e.index = ++index_;
    sm_->ApplyBatch(batch_, &results_);
    benchmark::DoNotOptimize(results_.data());
    counter_ += rows_per_batch_;
  }
  int64_t rows() const { return counter_; }
  // Every insert must have happened: a failing command is cheap and would
  // inflate the figure.
  bool InsertedEveryRow() {
    absl::StatusOr<QueryResult> count =
        sm_->Query(Statement{"SELECT count(*) FROM t", {}, {}});
    return count.ok() && count->rows.size() == 1 &&
           count->rows[0][0].integer == counter_;
  }

 private:
  const std::string path_ = TempPath();
  std::unique_ptr<SqliteStateMachine> sm_;
  std::vector<core::Entry> batch_;
  int64_t rows_per_batch_ = 0;
  std::vector<std::string> results_;
  uint64_t index_ = 0;
  int64_t counter_ = 0;
};

// Raw SQLite doing the same inserts through one prepared statement.
class RawSide {
 public:
  // `durable`: each commit synced (synchronous=FULL), as a write a client
  // is told is stored must be.
  explicit RawSide(int rows, bool durable = false) : rows_(rows) {
    // Both sides run under the same process-wide SQLite settings, whichever
    // benchmark happens to initialize SQLite first.
    ConfigureSqliteProcess();
    sqlite3_open(path_.c_str(), &db_);
    const std::string setup = absl::StrCat(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=",
        durable ? "FULL" : "NORMAL", "; CREATE TABLE t(a INTEGER, b TEXT)");
    sqlite3_exec(db_, setup.c_str(), nullptr, nullptr, nullptr);
    const std::string sql = InsertSql(rows);
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~RawSide() {
    sqlite3_finalize(stmt_);
    sqlite3_close(db_);
    std::filesystem::remove_all(path_.substr(0, path_.rfind('/')));
  }
  void ApplyBatch(int entries = kBatch) {
    sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
    for (int e = 0; e < entries; ++e) {
      for (int r = 0; r < rows_; ++r) {
        sqlite3_bind_int64(stmt_, 2 * r + 1, kFirstValue + counter_++);
        sqlite3_bind_text(stmt_, 2 * r + 2, "payload-value-0123456789", -1,
                          SQLITE_STATIC);
      }
      sqlite3_step(stmt_);
      sqlite3_reset(stmt_);
    }
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }
  int64_t rows() const { return counter_; }
  bool InsertedEveryRow() {
    sqlite3_stmt* count = nullptr;
    sqlite3_prepare_v2(db_, "SELECT count(*) FROM t", -1, &count, nullptr);
    const bool ok = sqlite3_step(count) == SQLITE_ROW &&
                    sqlite3_column_int64(count, 0) == counter_;
    sqlite3_finalize(count);
    return ok;
  }

 private:
  const int rows_;
  const std::string path_ = TempPath();
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int64_t counter_ = 0;
};

void BM_StateMachineApply(benchmark::State& state) {
  MachineSide sm(static_cast<int>(state.range(0)), true);
  for (auto _ : state) sm.ApplyBatch();
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(sm.rows()),
                                                benchmark::Counter::kIsRate);
  if (!sm.InsertedEveryRow()) {
    state.SkipWithError("the state machine did not insert every row");
  }
}
BENCHMARK(BM_StateMachineApply)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// A batch of one entry, a 1-row INSERT: what one client's write waits for
// between its commit and its answer (issue 17's breakdown), the apply's
// time per batch.
void BM_ApplyOneEntry(benchmark::State& state) {
  MachineSide sm(1, true, /*change_log=*/state.range(0) != 0, /*entries=*/1);
  for (auto _ : state) sm.ApplyBatch();
  if (!sm.InsertedEveryRow()) {
    state.SkipWithError("the state machine did not insert every row");
  }
}
BENCHMARK(BM_ApplyOneEntry)
    ->ArgName("change_log")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Raw SQLite's rows/s: `entries` statements per transaction, each commit
// synced if `durable`.
void RunRawSqlite(benchmark::State& state, bool durable, int entries) {
  RawSide raw(static_cast<int>(state.range(0)), durable);
  for (auto _ : state) raw.ApplyBatch(entries);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(raw.rows()),
                                                benchmark::Counter::kIsRate);
  if (!raw.InsertedEveryRow()) {
    state.SkipWithError("raw SQLite did not insert every row");
  }
}

void BM_RawSqlite(benchmark::State& state) {
  RunRawSqlite(state, /*durable=*/false, kBatch);
}
BENCHMARK(BM_RawSqlite)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One statement of `rows` rows per transaction, each commit synced: what
// one application thread gets from SQLite alone for a stored write
// (issue 17 compares 100-row batches through the cluster with it).
void BM_RawSqliteDurable(benchmark::State& state) {
  RunRawSqlite(state, /*durable=*/true, 1);
}
BENCHMARK(BM_RawSqliteDurable)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One batch of `first` and one of `second` per iteration, in alternating
// order (both meet the same moment of the host); the iteration's time is
// `first`'s. Sets counters <a>_rows/s, <b>_rows/s and ratio (a / b).
template <typename A, typename B>
void Alternate(benchmark::State& state, A& first, B& second, const char* a,
               const char* b) {
  using Clock = std::chrono::steady_clock;
  Clock::duration first_time{};
  Clock::duration second_time{};
  bool first_first = true;
  for (auto _ : state) {
    Clock::duration took{};
    for (int side = 0; side < 2; ++side) {
      const Clock::time_point start = Clock::now();
      if ((side == 0) == first_first) {
        first.ApplyBatch();
        took = Clock::now() - start;
      } else {
        second.ApplyBatch();
        second_time += Clock::now() - start;
      }
    }
    first_first = !first_first;
    first_time += took;
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
  const double first_rate = static_cast<double>(first.rows()) /
                            std::chrono::duration<double>(first_time).count();
  const double second_rate = static_cast<double>(second.rows()) /
                             std::chrono::duration<double>(second_time).count();
  state.counters[absl::StrCat(a, "_rows/s")] = first_rate;
  state.counters[absl::StrCat(b, "_rows/s")] = second_rate;
  state.counters["ratio"] = first_rate / second_rate;
  if (!first.InsertedEveryRow() || !second.InsertedEveryRow()) {
    state.SkipWithError("a side did not insert every row");
  }
}

// ratio = state machine rows/s / raw rows/s. Like for like: here the
// state machine checkpoints inline every 1,000 frames, as raw SQLite does
// (its thread would go on copying and syncing while the raw side runs, and
// the raw side's time would pay for it).
void BM_ApplyVsRawSqlite(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  MachineSide sm(rows, false);
  RawSide raw(rows);
  Alternate(state, sm, raw, "sm", "raw");
}
BENCHMARK(BM_ApplyVsRawSqlite)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime()
    ->MinTime(2.0);

// What capturing row changes for Watch (sm/change_log.h) costs the apply:
// a state machine with the change log against one without.
// ratio = rows/s with it / rows/s without.
void BM_ChangeLogCost(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  MachineSide with(rows, false, true);
  MachineSide without(rows, false, false);
  Alternate(state, with, without, "with", "without");
}
BENCHMARK(BM_ChangeLogCost)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime()
    ->MinTime(3.0);

// The poison pill of issue 12 (an INSERT from an endless recursive CTE) at
// the default write budget: how long one replica's apply takes before the
// entry fails. The default is meant to keep it near a second.
void BM_EndlessWriteAtDefaultBudget(benchmark::State& state) {
  auto opened = SqliteStateMachine::Open(SqliteOptions{TempPath()});
  if (!opened.ok()) std::abort();
  SqliteStateMachine& sm = **opened;
  uint64_t index = 0;
  Command create;
  create.statements.push_back(Statement{"CREATE TABLE t(v)", {}, {}});
  sm.Apply(core::Entry{1, ++index, core::EntryType::kNormal, create.Encode()});
  Command poison;
  poison.statements.push_back(Statement{
      "INSERT INTO t(v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 "
      "UNION ALL SELECT x+1 FROM c) SELECT x FROM c)",
      {},
      {}});
  const std::string data = poison.Encode();
  for (auto _ : state) {
    const std::string out =
        sm.Apply(core::Entry{1, ++index, core::EntryType::kNormal, data});
    absl::StatusOr<CommandResult> r = CommandResult::Decode(out);
    if (!r.ok() || r->statements.empty() ||
        !absl::IsResourceExhausted(r->statements[0].status)) {
      state.SkipWithError("the endless write did not spend its budget");
      return;
    }
  }
  state.counters["vm_steps_max"] =
      static_cast<double>(sm.write_settings().vm_steps_max);
}
BENCHMARK(BM_EndlessWriteAtDefaultBudget)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace
}  // namespace raftsql::sm
