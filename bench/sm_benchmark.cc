// SqliteStateMachine apply throughput against raw SQLite doing the same
// inserts in one process with the same settings (WAL, synchronous=NORMAL,
// one transaction per batch). Counters: rows/s; compare the two lines of
// each shape for the ratio.
//
//   ./bazelw run -c opt //bench:sm_benchmark
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {
namespace {

constexpr int kBatch = 64;  // Entries per apply batch / raw transaction.

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

void BM_StateMachineApply(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const std::string path = TempPath();
  auto sm = SqliteStateMachine::Open(SqliteOptions{path});
  if (!sm.ok()) {
    state.SkipWithError("open failed");
    return;
  }
  uint64_t index = 0;
  Command create;
  create.statements.push_back(
      Statement{"CREATE TABLE t(a INTEGER, b TEXT)", {}, {}});
  (*sm)->Apply(
      core::Entry{1, ++index, core::EntryType::kNormal, create.Encode()});
  const std::string sql = InsertSql(rows);
  int64_t counter = 0;
  for (auto _ : state) {
    // Encoding happens on the leader at proposal time, not in apply.
    state.PauseTiming();
    std::vector<core::Entry> batch;
    for (int e = 0; e < kBatch; ++e) {
      Command c;
      Statement st{sql, {}, {}};
      for (int r = 0; r < rows; ++r) {
        st.positional.push_back(Value::Integer(++counter));
        st.positional.push_back(Value::Text("payload-value-0123456789"));
      }
      c.statements.push_back(std::move(st));
      batch.push_back(
          core::Entry{1, ++index, core::EntryType::kNormal, c.Encode()});
    }
    state.ResumeTiming();
    benchmark::DoNotOptimize((*sm)->ApplyBatch(batch));
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(counter),
                                                benchmark::Counter::kIsRate);
  // Every insert must have happened: a failing command is cheap and would
  // inflate the figure.
  absl::StatusOr<QueryResult> count =
      (*sm)->Query(Statement{"SELECT count(*) FROM t", {}, {}});
  if (!count.ok() || count->rows.size() != 1 ||
      count->rows[0][0].integer != counter) {
    state.SkipWithError("the state machine did not insert every row");
  }
  sm->reset();
  std::filesystem::remove_all(path.substr(0, path.rfind('/')));
}
BENCHMARK(BM_StateMachineApply)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_RawSqlite(benchmark::State& state) {
  // Both sides run under the same process-wide SQLite settings, whichever
  // benchmark happens to initialize SQLite first.
  ConfigureSqliteProcess();
  const int rows = static_cast<int>(state.range(0));
  const std::string path = TempPath();
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE t(a INTEGER, b TEXT)",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = InsertSql(rows);
  sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  int64_t counter = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int e = 0; e < kBatch; ++e) {
      for (int r = 0; r < rows; ++r) {
        sqlite3_bind_int64(stmt, 2 * r + 1, ++counter);
        sqlite3_bind_text(stmt, 2 * r + 2, "payload-value-0123456789", -1,
                          SQLITE_STATIC);
      }
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(counter),
                                                benchmark::Counter::kIsRate);
  sqlite3_finalize(stmt);
  sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &stmt, nullptr);
  if (sqlite3_step(stmt) != SQLITE_ROW ||
      sqlite3_column_int64(stmt, 0) != counter) {
    state.SkipWithError("raw SQLite did not insert every row");
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  std::filesystem::remove_all(path.substr(0, path.rfind('/')));
}
BENCHMARK(BM_RawSqlite)
    ->Arg(1)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace raftsql::sm
