// The read side: Query and GetVersion on a pooled read connection (files)
// or on the one connection (memory), each read under its ReadLimits.
#include <sqlite3.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/schema_listing.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
absl::StatusOr<QueryResult> SqliteStateMachine::Query(
    const Statement& statement, const ReadLimits& limits) {
  // One page of at most max_result_bytes: beyond it the read fails.
  QueryResult result;
  bool taken = false;
  absl::Status s = QueryPages(
      statement, limits, limits.max_result_bytes,
      [&result, &taken, &limits, this](QueryResult page) {
        if (taken || page.rows.size() > options_.max_query_rows) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "query result exceeds ", limits.max_result_bytes, " bytes or ",
              options_.max_query_rows,
              " rows; select fewer rows or columns, or use QueryStream"));
        }
        result = std::move(page);
        taken = true;
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return result;
}

absl::Status SqliteStateMachine::QueryPages(const Statement& statement,
                                            const ReadLimits& limits,
                                            size_t page_bytes,
                                            const PageSink& emit) {
  absl::Status refused = ReadRefusal();
  if (!refused.ok()) return refused;
  if (read_pool_ == nullptr) {
    // Memory: the write connection serves reads too; its progress handler
    // checks memory_read_ while one runs.
    std::lock_guard<std::mutex> lock(memory_read_mu_);
    memory_read_ = &limits;
    memory_read_interruption_ = absl::OkStatus();
    // Its statements are prepared for each read (the apply's cache is the
    // apply thread's).
    StatementCache none(db_, &write_policy_, StatementCache::Limits{0, 0});
    absl::Status r = RunQuery(
        none, write_policy_, statement,
        [this] { return memory_read_interruption_; }, page_bytes, emit);
    memory_read_ = nullptr;
    return r;
  }
  absl::StatusOr<ReadPool::Lease> lease = read_pool_->Acquire(limits);
  if (!lease.ok()) return lease.status();
  const ReadPool::Lease& l = *lease;
  return RunQuery(
      l.statements(), l.policy(), statement, [&l] { return l.Interruption(); },
      page_bytes, emit);
}

absl::Status SqliteStateMachine::RunQuery(
    StatementCache& statements, StatementPolicy& policy,
    const Statement& statement,
    const std::function<absl::Status()>& interruption, size_t page_bytes,
    const PageSink& emit) {
  policy.BeginStatement();
  // Prepared (through the authorizer, one statement only) or kept from an
  // earlier read of the same text; kept again only if this read went well.
  absl::StatusOr<StatementCache::Prepared> prepared =
      statements.Acquire(statement.sql);
  if (!prepared.ok()) return prepared.status();
  absl::Status s =
      RunPrepared(*prepared, policy, statement, interruption, page_bytes, emit);
  if (s.ok()) {
    statements.Release(statement.sql, *prepared, /*schema_changed=*/false);
  } else {
    statements.Drop(statement.sql, *prepared);
  }
  return s;
}

absl::Status SqliteStateMachine::RunPrepared(
    const StatementCache::Prepared& prepared, StatementPolicy& policy,
    const Statement& statement,
    const std::function<absl::Status()>& interruption, size_t page_bytes,
    const PageSink& emit) {
  sqlite3_stmt* const stmt = prepared.stmt;
  sqlite3* const db = sqlite3_db_handle(stmt);
  if (!sqlite3_stmt_readonly(stmt)) {
    return WrongPathError(
        StatementKind::kWrites,
        "Query runs read-only statements; send writes with Execute");
  }
  absl::Status bind = BindAll(stmt, statement);
  if (!bind.ok()) return bind;
  QueryResult page;
  size_t bytes = 0;
  // The columns are known after the first step: a connection whose cached
  // schema is older than the file's prepares against the old schema, and
  // SQLite prepares the statement again inside that step (ALTER TABLE ADD
  // COLUMN, or a table dropped and created anew with other columns).
  int rc = sqlite3_step(stmt);
  const int columns = sqlite3_column_count(stmt);
  const std::vector<std::string>* written = prepared.written_columns.get();
  for (int i = 0; i < columns; ++i) {
    page.columns.push_back(written != nullptr &&
                                   static_cast<int>(written->size()) == columns
                               ? (*written)[i]
                               : sqlite3_column_name(stmt, i));
    const char* type = sqlite3_column_decltype(stmt, i);
    page.declared_types.push_back(type != nullptr ? type : "");
    bytes +=
        32 + page.columns.back().size() + page.declared_types.back().size();
  }
  bool emitted = false;
  for (; rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
    std::vector<Value> row;
    row.reserve(columns);
    size_t row_bytes = 0;
    for (int i = 0; i < columns; ++i) {
      row.push_back(ColumnValue(stmt, i));
      row_bytes += ValueBytes(row.back());
    }
    // Pages are cut as rows arrive: a result never sits in memory whole.
    if (bytes + row_bytes > page_bytes && (!page.rows.empty() || emitted)) {
      absl::Status s = emit(std::move(page));
      if (!s.ok()) return s;
      emitted = true;
      page = QueryResult{};
      bytes = 0;
    }
    if (row_bytes > page_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a row of ", row_bytes, " bytes exceeds the page of ", page_bytes));
    }
    bytes += row_bytes;
    page.rows.push_back(std::move(row));
  }
  if ((rc & 0xff) == SQLITE_INTERRUPT) {
    absl::Status why = interruption();
    if (!why.ok()) return why;
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc, policy.refusal());
  // The last page (the only one of an empty result, with its columns).
  if (!emitted || !page.rows.empty()) return emit(std::move(page));
  return absl::OkStatus();
}

bool SqliteStateMachine::OnProgress() {
  if (memory_read_ != nullptr) {
    return ReadLimitReached(*memory_read_, &memory_read_interruption_);
  }
  return budget_.OnProgress();
}

absl::StatusOr<uint64_t> SqliteStateMachine::InternalRead(
    const ReadLimits& limits,
    const std::function<absl::StatusOr<uint64_t>(sqlite3*)>& read) {
  // Our own statements: internal tables are read past the authorizer.
  auto run = [&read](sqlite3* db, StatementPolicy& policy) {
    StatementPolicy::InternalScope scope(policy);
    return read(db);
  };
  if (read_pool_ == nullptr) {
    std::lock_guard<std::mutex> lock(memory_read_mu_);
    return run(db_, write_policy_);
  }
  absl::StatusOr<ReadPool::Lease> lease = read_pool_->Acquire(limits);
  if (!lease.ok()) return lease.status();
  return run(lease->db(), lease->policy());
}

absl::StatusOr<uint64_t> SqliteStateMachine::GetVersion(
    const std::string& table, const ReadLimits& limits) {
  absl::Status refused = ReadRefusal();
  if (!refused.ok()) return refused;
  return InternalRead(limits, [&table](sqlite3* db) {
    return TableVersions::Lookup(db, table);
  });
}

absl::StatusOr<uint64_t> SqliteStateMachine::SessionSequence(
    uint64_t session_id) {
  return InternalRead(ReadLimits{}, [session_id](sqlite3* db) {
    return Sessions::ReadSequence(db, session_id);
  });
}

}  // namespace raftsql::sm
