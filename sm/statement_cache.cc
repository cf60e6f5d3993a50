#include "sm/statement_cache.h"

#include <sqlite3.h>

#include <cctype>
#include <string>

#include "core/check.h"
#include "sm/schema_listing.h"
#include "sm/sql_tokens.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

// Whether SQLite counts the statement's rows in changes(): INSERT, UPDATE,
// DELETE, REPLACE, or a WITH clause before one (a CTE that writes can only
// lead one of those).
bool CountsChanges(sqlite3_stmt* stmt, std::string_view sql) {
  if (sqlite3_stmt_readonly(stmt)) return false;
  const std::string word = FirstKeyword(sql);
  return word == "INSERT" || word == "UPDATE" || word == "DELETE" ||
         word == "REPLACE" || word == "WITH";
}

}  // namespace

StatementCache::StatementCache(sqlite3* db, StatementPolicy* policy,
                               Limits limits)
    : db_(db), policy_(policy), limits_(limits) {
  CHECK(db_ != nullptr);
  CHECK(policy_ != nullptr);
}

absl::StatusOr<StatementCache::Prepared> StatementCache::Acquire(
    std::string_view sql) {
  if (const Prepared* cached = Find(sql)) return *cached;
  CHECK(!policy_->internal());  // A client's statement faces the authorizer.
  const ClientSql text(sql);
  if (!text.status().ok()) return text.status();
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db_, text.text().data(),
                                    static_cast<int>(text.text().size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, policy_->refusal());
  if (stmt == nullptr) return absl::InvalidArgumentError("empty statement");
  absl::Status single = CheckSingleStatement(tail, text.end());
  if (!single.ok()) {
    sqlite3_finalize(stmt);
    return single;
  }
  Prepared prepared{stmt,
                    false,
                    MentionsNoCase(sql, "fail"),
                    MentionsNoCase(sql, "trigger"),
                    sqlite3_bind_parameter_count(stmt),
                    CountsChanges(stmt, sql),
                    IsPlainVacuum(sql),
                    nullptr};
  if (text.rewritten()) {
    StatementPolicy::InternalScope names(*policy_);
    prepared.written_columns = std::make_shared<std::vector<std::string>>(
        WrittenColumnNames(db_, sql));
  }
  return prepared;
}

const StatementCache::Prepared* StatementCache::Find(
    std::string_view sql) const {
  if (last_found_ != nullptr && last_found_->first == sql) {
    return &last_found_->second;
  }
  auto it = statements_.find(sql);
  if (it == statements_.end()) return nullptr;
  last_found_ = &*it;
  return &it->second;
}

void StatementCache::Clear() {
  for (auto& [text, old] : statements_) sqlite3_finalize(old.stmt);
  last_found_ = nullptr;
  statements_.clear();
  bytes_ = 0;
}

void StatementCache::Release(std::string_view sql, const Prepared& stmt,
                             bool schema_changed) {
  CHECK(stmt.stmt != nullptr);
  if (schema_changed) {
    if (!stmt.cached) sqlite3_finalize(stmt.stmt);
    Clear();
    return;
  }
  // The bindings stay (they point into the entry's bytes, which may be gone
  // by then, and only a step reads them): the next run binds every
  // parameter or clears them first.
  sqlite3_reset(stmt.stmt);
  if (stmt.cached) return;
  const size_t bytes = static_cast<size_t>(
      sqlite3_stmt_status(stmt.stmt, SQLITE_STMTSTATUS_MEMUSED, 0));
  if (bytes > limits_.max_bytes || limits_.max_statements == 0) {
    sqlite3_finalize(stmt.stmt);
    return;
  }
  if (statements_.size() >= limits_.max_statements ||
      bytes_ + bytes > limits_.max_bytes) {
    Clear();
  }
  Prepared kept = stmt;
  kept.cached = true;
  kept.bytes = bytes;
  statements_.emplace(std::string(sql), kept);
  bytes_ += bytes;
}

void StatementCache::Drop(std::string_view sql, const Prepared& stmt) {
  CHECK(stmt.stmt != nullptr);
  if (stmt.cached) {
    auto it = statements_.find(sql);
    CHECK(it != statements_.end() && it->second.stmt == stmt.stmt);
    if (last_found_ == &*it) last_found_ = nullptr;
    bytes_ -= it->second.bytes;
    statements_.erase(it);
  }
  sqlite3_finalize(stmt.stmt);
}

void StatementCache::CheckInvariants() const {
  CHECK_LE(statements_.size(), limits_.max_statements);
  CHECK_LE(bytes_, limits_.max_bytes);
  size_t bytes = 0;
  for (const auto& [text, kept] : statements_) {
    CHECK(kept.cached);
    CHECK(kept.stmt != nullptr);
    bytes += kept.bytes;
  }
  CHECK_EQ(bytes, bytes_);
  if (last_found_ != nullptr) {
    auto it = statements_.find(last_found_->first);
    CHECK(it != statements_.end() && &*it == last_found_);
  }
}

}  // namespace raftsql::sm
