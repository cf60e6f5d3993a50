#include "sm/command_context.h"

#include <sqlite3.h>

#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/deterministic_vfs.h"

namespace raftsql::sm {
namespace {

CommandContext* ContextOf(sqlite3_context* ctx) {
  return static_cast<CommandContext*>(sqlite3_user_data(ctx));
}

void RandomFn(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int64(
      ctx, static_cast<sqlite3_int64>(ContextOf(ctx)->prng().Next()));
}

// randomblob(N) from `prng`, within the connection's length limit, as
// SQLite's own.
void ResultRandomBlob(sqlite3_context* ctx, sqlite3_value* size,
                      core::Prng& prng) {
  sqlite3_int64 n = sqlite3_value_int64(size);
  if (n < 1) n = 1;
  if (n >
      sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1)) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  std::string blob(static_cast<size_t>(n), '\0');
  for (char& b : blob) b = static_cast<char>(prng.Next());
  sqlite3_result_blob64(ctx, blob.data(), blob.size(), SQLITE_TRANSIENT);
}

void RandomBlobFn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  ResultRandomBlob(ctx, argv[0], ContextOf(ctx)->prng());
}

void ChangesFn(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int64(ctx, ContextOf(ctx)->changes());
}

void TotalChangesFn(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int64(ctx, ContextOf(ctx)->total_changes());
}

// SQLite's compile-time bound on a function's arguments.
constexpr int kMaxFunctionArguments = 127;

void DateFn(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* fn = static_cast<CommandContext::DateFunction*>(sqlite3_user_data(ctx));
  fn->context->Date(fn->name, ctx, argc, argv);
}

// 'localtime' or 'utc', as SQLite's date functions match modifiers.
bool IsZoneModifier(sqlite3_value* v) {
  if (sqlite3_value_type(v) != SQLITE_TEXT) return false;
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(v));
  return text != nullptr && (absl::EqualsIgnoreCase(text, "localtime") ||
                             absl::EqualsIgnoreCase(text, "utc"));
}

// A read's random(): each reading thread has its own generator.
core::Prng& ReadPrng() {
  thread_local core::Prng prng(std::random_device{}() ^
                               (uint64_t{std::random_device{}()} << 32));
  return prng;
}

void ReadRandomFn(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(ReadPrng().Next()));
}

void ReadRandomBlobFn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  ResultRandomBlob(ctx, argv[0], ReadPrng());
}

}  // namespace

absl::Status InstallReadRandomness(sqlite3* db) {
  if (sqlite3_create_function(db, "random", 0, SQLITE_UTF8, nullptr,
                              ReadRandomFn, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_create_function(db, "randomblob", 1, SQLITE_UTF8, nullptr,
                              ReadRandomBlobFn, nullptr,
                              nullptr) != SQLITE_OK) {
    return absl::InternalError("cannot register a read's random()");
  }
  return absl::OkStatus();
}

CommandContext::~CommandContext() {
  for (auto& [key, stmt] : date_statements_) sqlite3_finalize(stmt);
  sqlite3_close(dates_);
}

absl::Status CommandContext::Install(sqlite3* db) {
  CHECK(db != nullptr);
  const int fn = SQLITE_UTF8;
  const int pure = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  bool ok =
      sqlite3_create_function(db, "random", 0, fn, this, RandomFn, nullptr,
                              nullptr) == SQLITE_OK &&
      sqlite3_create_function(db, "randomblob", 1, fn, this, RandomBlobFn,
                              nullptr, nullptr) == SQLITE_OK &&
      sqlite3_create_function(db, "changes", 0, fn, this, ChangesFn, nullptr,
                              nullptr) == SQLITE_OK &&
      sqlite3_create_function(db, "total_changes", 0, fn, this, TotalChangesFn,
                              nullptr, nullptr) == SQLITE_OK;
  // The date functions stay usable in generated columns and indexes, as
  // SQLite's own are (with this context, they are deterministic).
  for (size_t i = 0; ok && i < std::size(kDateFunctions); ++i) {
    date_functions_[i] = DateFunction{this, kDateFunctions[i]};
    ok = sqlite3_create_function(db, kDateFunctions[i], -1, pure,
                                 &date_functions_[i], DateFn, nullptr,
                                 nullptr) == SQLITE_OK;
  }
  if (!ok) {
    return absl::InternalError(absl::StrCat(
        "cannot register deterministic functions: ", sqlite3_errmsg(db)));
  }
  if (dates_ != nullptr) return absl::OkStatus();  // A reopened database.
  if (sqlite3_open_v2(":memory:", &dates_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      DeterministicVfsName()) != SQLITE_OK) {
    return absl::ResourceExhaustedError("cannot open the date connection");
  }
  return absl::OkStatus();
}

void CommandContext::BeginCommand(uint64_t seed, uint64_t index) {
  seed_ = seed;
  index_ = index;
  statement_ = 0;
  prng_seeded_ = false;  // Seeded on first use: most entries never draw.
  changes_ = 0;
  total_changes_ = 0;
  last_insert_rowid_ = 0;
}

core::Prng& CommandContext::prng() {
  if (!prng_seeded_) {
    prng_ = core::Prng(seed_ ^ (index_ * 0x9e3779b97f4a7c15ull));
    prng_seeded_ = true;
  }
  return prng_;
}

void CommandContext::BeginStatement(sqlite3* db) {
  sqlite3_set_last_insert_rowid(db, last_insert_rowid_);
  // SQLite draws random rowids from its process-wide PRNG; seeding it with
  // a non-zero value makes it ignore the VFS's randomness. The reads'
  // connections never draw from it (their random() is their own), so the
  // draws follow from the entry alone.
  uint64_t x = (seed_ + 0x9e3779b97f4a7c15ull * (index_ + 1)) ^
               (static_cast<uint64_t>(statement_) << 32);
  x ^= x >> 29;
  int seed = static_cast<int>(x & 0x7fffffff);
  if (seed == 0) seed = 1;
  sqlite3_test_control(SQLITE_TESTCTRL_PRNG_SEED, seed, nullptr);
  ++statement_;
}

void CommandContext::EndStatement(sqlite3* db, bool counted,
                                  int64_t rows_changed) {
  CHECK_GE(rows_changed, 0);
  if (counted) changes_ = sqlite3_changes64(db);
  total_changes_ += rows_changed;
  last_insert_rowid_ = sqlite3_last_insert_rowid(db);
}

sqlite3_stmt* CommandContext::DateStatement(const char* name, int argc) {
  sqlite3_stmt*& stmt = date_statements_[{name, argc}];
  if (stmt == nullptr) {
    std::string sql = absl::StrCat("SELECT ", name, "(");
    for (int i = 0; i < argc; ++i) absl::StrAppend(&sql, i ? ", ?" : "?");
    sql += ")";
    if (sqlite3_prepare_v3(dates_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT,
                           &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      stmt = nullptr;
      date_statements_.erase({name, argc});
      return nullptr;
    }
  }
  return stmt;
}

void CommandContext::Date(const char* name, sqlite3_context* ctx, int argc,
                          sqlite3_value** argv) {
  // The zone is UTC on every replica, where both modifiers change nothing.
  sqlite3_value* kept[kMaxFunctionArguments];
  int n = 0;
  for (int i = 0; i < argc && n < kMaxFunctionArguments; ++i) {
    if (!IsZoneModifier(argv[i])) kept[n++] = argv[i];
  }
  sqlite3_stmt* stmt = DateStatement(name, n);
  if (stmt == nullptr) {
    sqlite3_result_error(ctx, sqlite3_errmsg(dates_), -1);
    return;
  }
  for (int i = 0; i < n; ++i) sqlite3_bind_value(stmt, i + 1, kept[i]);
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    sqlite3_result_value(ctx, sqlite3_column_value(stmt, 0));
  } else {
    sqlite3_result_error(ctx, sqlite3_errmsg(dates_), -1);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

}  // namespace raftsql::sm
