// StatementCache: a connection's prepared client statements, keyed by their
// text, so that a text seen before is neither parsed nor scanned again: the
// write connection's, and each read connection's (sm/read_pool.h). Bounded
// by a count and by the heap SQLite says the kept statements use (cleared
// whole when either is reached; a statement over the bytes alone is never
// kept).
//
// Statements that change the schema are never kept, and any schema change
// empties the cache: every kept statement would otherwise be re-prepared
// inside its next step, and those steps would count towards that command's
// write budget on this replica only (one that restarted since has no such
// statement). A restarted replica starts empty; so does the cache then.
//
// Thread-safety: the one thread that uses the connection at a time.
#ifndef RAFTSQL_SM_STATEMENT_CACHE_H_
#define RAFTSQL_SM_STATEMENT_CACHE_H_

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "sm/statement_policy.h"

struct sqlite3;
struct sqlite3_stmt;

namespace raftsql::sm {

class StatementCache {
 public:
  static constexpr size_t kMaxStatements = 256;
  // SQLITE_STMTSTATUS_MEMUSED summed over the kept statements: a client's
  // text is at most a request (4 MiB), and its program can be larger.
  static constexpr size_t kMaxBytes = size_t{16} << 20;
  struct Limits {
    size_t max_statements = kMaxStatements;
    size_t max_bytes = kMaxBytes;
  };

  // A prepared client statement, and what its text mentions (found once
  // per distinct text, not per apply).
  struct Prepared {
    sqlite3_stmt* stmt = nullptr;
    bool cached = false;            // Owned by the cache (else the caller).
    bool mentions_fail = false;     // OR FAIL, RAISE(FAIL)
    bool mentions_trigger = false;  // may create or drop a trigger
    int parameters = 0;             // sqlite3_bind_parameter_count
    // An INSERT, UPDATE or DELETE (whose count SQLite's changes() reports).
    bool counts_changes = false;
    // VACUUM (IsPlainVacuum): never stepped inside the batch's transaction;
    // the state machine runs it off the apply loop (sm/vacuum.h).
    bool vacuum = false;
    // Its result columns' names as the client wrote them, when the text
    // was rewritten (schema_listing.h); else null.
    std::shared_ptr<const std::vector<std::string>> written_columns;
    size_t bytes = 0;  // Kept: SQLITE_STMTSTATUS_MEMUSED when it was.
  };

  // `db` and its `policy` must outlive this.
  StatementCache(sqlite3* db, StatementPolicy* policy, Limits limits);
  StatementCache(sqlite3* db, StatementPolicy* policy)
      : StatementCache(db, policy, Limits{kMaxStatements, kMaxBytes}) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache() { Clear(); }

  // The statement for `sql`, from the cache or freshly prepared (through
  // the authorizer). The error SQLite or the policy gave, or
  // InvalidArgument for an empty text or one holding several statements.
  // Statements run one at a time, so a cached one is never in use twice.
  absl::StatusOr<Prepared> Acquire(std::string_view sql);
  // `stmt` (from Acquire(sql)) ran. It is reset and kept, unless
  // `schema_changed`: then it and every kept statement are finalized.
  void Release(std::string_view sql, const Prepared& stmt, bool schema_changed);
  // `stmt` (from Acquire(sql)) is not to be run again: finalized, and
  // forgotten if it was kept.
  void Drop(std::string_view sql, const Prepared& stmt);
  // The kept statement for `sql`, or null.
  const Prepared* Find(std::string_view sql) const;
  void Clear();
  size_t size() const { return statements_.size(); }
  size_t bytes() const { return bytes_; }

  void CheckInvariants() const;

 private:
  // Looked up by views into the entries (without a copy of the text):
  // hence the transparent hash and equality.
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  using Map =
      std::unordered_map<std::string, Prepared, TextHash, std::equal_to<>>;

  sqlite3* db_;
  StatementPolicy* policy_;
  const Limits limits_;
  // Invariant: size() <= max_statements, bytes_ <= max_bytes and is the
  // sum of the values' bytes; every value is cached, non-null.
  Map statements_;
  size_t bytes_ = 0;
  // Find's last hit (its node in statements_; null after a clear): an
  // entry's text is looked up twice, and mostly repeats the last one's.
  mutable const Map::value_type* last_found_ = nullptr;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_STATEMENT_CACHE_H_
