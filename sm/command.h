// The replicated write command and its result (DESIGN.md §3): one or more SQL
// statements with bound parameters, whether they run as one transaction, an
// optional client session for exactly-once retries, and the values the
// leader fixes when it proposes (timestamp and random seed) so that every
// replica computes the same bytes.
#ifndef RAFTSQL_SM_COMMAND_H_
#define RAFTSQL_SM_COMMAND_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/codec.h"

namespace raftsql::sm {

// A typed SQLite value.
struct Value {
  enum class Type : uint8_t { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // kText or kBlob

  static Value Null() { return Value{}; }
  static Value Integer(int64_t v) { return Value{Type::kInteger, v, 0, {}}; }
  static Value Real(double v) { return Value{Type::kReal, 0, v, {}}; }
  static Value Text(std::string v) {
    return Value{Type::kText, 0, 0, std::move(v)};
  }
  static Value Blob(std::string v) {
    return Value{Type::kBlob, 0, 0, std::move(v)};
  }
  bool operator==(const Value&) const = default;
  std::string DebugString() const;
};

struct Statement {
  std::string sql;
  std::vector<Value> positional;                     // ?1, ?2, ... or ?
  std::vector<std::pair<std::string, Value>> named;  // :name, @name, $name
  bool operator==(const Statement&) const = default;
};

struct Command {
  std::vector<Statement> statements;
  // All or nothing: a failing statement rolls back the whole command.
  // Otherwise each statement is atomic on its own and later ones still run.
  bool transaction = false;
  // Exactly-once sessions (Raft thesis §6.3); 0 = no session.
  uint64_t session_id = 0;
  uint64_t sequence = 0;
  // Fixed by the leader at proposal time.
  int64_t timestamp_ms = 0;
  uint64_t random_seed = 0;
  // Set by the node that proposed it, to find the waiting client when the
  // entry applies there; no effect on the state machine.
  uint64_t request_id = 0;
  // The authenticated user who sent it (set by the server, never by the
  // client): a session belongs to the user who opened it.
  std::string user;

  std::string Encode() const;
  static absl::StatusOr<Command> Decode(std::string_view data);
  // request_id of an encoded command without decoding it (0 if `data` is
  // not a command).
  static uint64_t PeekRequestId(std::string_view data);
  bool operator==(const Command&) const = default;
};

// An encoded command as the apply loop reads it: Command's fields, with the
// SQL, texts, blobs and names pointing into the encoded bytes (nothing is
// copied). Valid while those bytes are.
// A value as the log's encodings carry it: its type byte, then 8 bytes
// (integer, real) or a length-prefixed string (text, blob).
void PutValue(std::string& out, const Value& v);

struct ValueView {
  Value::Type type = Value::Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string_view bytes;  // kText or kBlob
};

struct StatementView {
  std::string_view sql;
  std::vector<ValueView> positional;
  std::vector<std::pair<std::string_view, ValueView>> named;
};

struct CommandView {
  std::vector<StatementView> statements;
  bool transaction = false;
  uint64_t session_id = 0;
  uint64_t sequence = 0;
  int64_t timestamp_ms = 0;
  uint64_t random_seed = 0;
  uint64_t request_id = 0;
  std::string_view user;

  // Decodes `data` (Command::Encode's bytes) into this view, reusing its
  // vectors: the apply loop decodes every entry into one.
  absl::Status Decode(std::string_view data);
};

// Error messages may echo a client's input (a token, a name): they are cut
// to this many bytes, at a UTF-8 character boundary, wherever they are made
// from such input and where they leave the server, and made valid UTF-8
// (they travel in string fields).
inline constexpr size_t kMaxErrorMessageBytes = 1024;
std::string TruncatedMessage(absl::string_view message);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points past U+10FFFF). SQLite stores TEXT as whatever bytes it is
// given, so a value read back may not be.
bool IsValidUtf8(absl::string_view text);
// `text` with each byte that is not part of a valid character replaced by
// U+FFFD (for messages, which travel in string fields).
std::string ValidUtf8(absl::string_view text);

// `v` as a SQL literal that reads back as the same value: NULL, 12,
// 1.5e+300 (a REAL keeps a point or exponent; NaN is NULL, as SQLite
// stores it; infinities 1e999), 'it''s', X'00ff', and TEXT that is not
// valid UTF-8 or holds a NUL as CAST(X'..' AS TEXT).
std::string SqlLiteral(const Value& v);

// A statement sent down the wrong path: a read to Execute
// (kReadsOnly), a write to Query (kWrites). INVALID_ARGUMENT with
// `message`, marked so that a caller sorting statements (the HTTP API's
// unified endpoint) can tell these refusals from others.
enum class StatementKind { kReadsOnly, kWrites };
absl::Status WrongPathError(StatementKind kind, absl::string_view message);
// The kind `status` refuses, if it is such a refusal.
std::optional<StatementKind> WrongPathOf(const absl::Status& status);

struct StatementResult {
  absl::Status status;  // SQLite's message on failure
  int64_t rows_affected = 0;
  int64_t last_insert_rowid = 0;
  // The rows a write returned (INSERT/UPDATE/DELETE ... RETURNING), up to
  // kMaxReturnedBytes per command; `rows_truncated` if some were left out.
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
  bool rows_truncated = false;
};

// Bytes of returned rows (values and column names, as ValueBytes counts
// them) one command's result keeps: results are stored in sessions, so the
// bound is the same on every replica.
inline constexpr size_t kMaxReturnedBytes = size_t{1} << 20;
// What a value costs in a result, roughly as it travels.
inline size_t ValueBytes(const Value& v) { return 16 + v.bytes.size(); }

struct CommandResult {
  std::vector<StatementResult> statements;
  uint64_t index = 0;  // The log index the command was applied at.
  // Tables the command changed, with their new versions (= index), sorted
  // by name, each once. (A vector, not a map: the apply loop reuses one
  // result for every entry and keeps its storage.)
  std::vector<std::pair<std::string, uint64_t>> versions;
  // A retry of a session request already applied: the stored result.
  bool duplicate = false;

  std::string Encode() const;
  // Encodes into `out`, replacing what it held (its storage is reused).
  void EncodeTo(std::string* out) const;
  static absl::StatusOr<CommandResult> Decode(std::string_view data);

  // The first failed statement's status; OK if every statement succeeded.
  absl::Status FirstFailure() const;
  // Why the command failed: the first failure that is not ABORTED (a
  // statement a later one's failure rolled back, in a transaction), else
  // the first failure; OK if every statement succeeded.
  absl::Status Cause() const;

  // The tables an encoded result says its command changed, each passed to
  // `fn` (pointing into `data`), without decoding the rest: the server asks
  // this of every entry it applies. False if `data` is not a result.
  template <typename Fn>
  static bool ForEachVersion(std::string_view data, Fn fn);

 private:
  // Skips `data` to its versions; false if it is not a result.
  static bool SkipToVersions(std::string_view* data, uint64_t* count);
};

template <typename Fn>
bool CommandResult::ForEachVersion(std::string_view data, Fn fn) {
  uint64_t n = 0;
  if (!SkipToVersions(&data, &n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::optional<std::string_view> table = core::GetBytes(data);
    if (!table || !core::GetFixed64(data)) return false;  // name, version
    fn(*table);
  }
  return true;
}

struct QueryResult {
  std::vector<std::string> columns;
  // Each column's declared type in its table's schema ("" for an
  // expression or a column declared without one).
  std::vector<std::string> declared_types;
  std::vector<std::vector<Value>> rows;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_COMMAND_H_
