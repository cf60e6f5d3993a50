#include "edge/edge_store.h"

#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftsql::edge {
namespace {

// A prepared statement, finalized when it goes.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindReal(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return ok() ? sqlite3_step(s_) : rc_; }
  absl::Status Run() {
    const int rc = Step();
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat("edge store: ", sqlite3_errmsg(db_)));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
};

std::string NewIncarnation(uint64_t seed) {
  uint64_t v = seed * 0x9e3779b97f4a7c15ull;
  if (seed == 0) {
    std::random_device rd;
    v = (uint64_t{rd()} << 32) ^ rd();
  }
  return absl::StrCat("i", absl::Hex(v, absl::kZeroPad16));
}

constexpr const char* kCounterKeys[] = {"stored", "dropped_full", "dropped_age",
                                        "rejected_full", "refused_by_hub"};

uint64_t* CounterOf(StoreCounters& c, int i) {
  uint64_t* all[] = {&c.stored, &c.dropped_full, &c.dropped_age,
                     &c.rejected_full, &c.refused_by_hub};
  return all[i];
}

}  // namespace

absl::StatusOr<std::unique_ptr<EdgeStore>> EdgeStore::Open(
    const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<EdgeStore>> store = OpenOnce(options);
  if (store.ok() || !options.replace_corrupt ||
      store.status().code() != absl::StatusCode::kDataLoss) {
    return store;
  }
  auto rename = [&options](const std::string& from, const std::string& to) {
    if (options.rename) return options.rename(from, to);
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (ec == std::errc::no_such_file_or_directory) {
      return absl::NotFoundError(from);
    }
    return ec ? absl::InternalError(
                    absl::StrCat("rename ", from, ": ", ec.message()))
              : absl::OkStatus();
  };
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string from = options.path + suffix;
    absl::Status s = rename(from, options.path + ".corrupt" + suffix);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  std::fprintf(stderr,
               "edge: the store %s cannot be read (%s): moved to %s.corrupt, "
               "starting a new one\n",
               options.path.c_str(),
               std::string(store.status().message()).c_str(),
               options.path.c_str());
  return OpenOnce(options);
}

absl::StatusOr<std::unique_ptr<EdgeStore>> EdgeStore::OpenOnce(
    const StoreOptions& options) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      options.vfs) != SQLITE_OK) {
    std::string why = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat("cannot open the edge store ", options.path, ": ", why));
  }
  std::unique_ptr<EdgeStore> store(new EdgeStore(options, db));
  if (absl::Status s = store->Init(); !s.ok()) {
    const int rc = sqlite3_errcode(db) & 0xff;
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
      return absl::DataLossError(s.message());
    }
    return s;
  }
  return store;
}

EdgeStore::EdgeStore(StoreOptions options, sqlite3* db)
    : options_(std::move(options)), db_(db) {}

EdgeStore::~EdgeStore() { sqlite3_close(db_); }

absl::Status EdgeStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = absl::InternalError(
        absl::StrCat("edge store: ", err != nullptr ? err : "error"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::Status EdgeStore::Init() {
  sqlite3_busy_timeout(db_, options_.busy_timeout_ms);
  absl::Status s = Exec(absl::StrCat(
      "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; "
      "PRAGMA synchronous = ",
      options_.sync_every_commit ? "FULL" : "NORMAL",
      "; CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) "
      "WITHOUT ROWID; "
      "CREATE TABLE IF NOT EXISTS readings(seq INTEGER PRIMARY KEY, "
      "sensor TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, "
      "device_time_ms INTEGER NOT NULL, stored_ms INTEGER NOT NULL, "
      "bytes INTEGER NOT NULL); "
      "CREATE TABLE IF NOT EXISTS executed(id TEXT PRIMARY KEY, "
      "result INTEGER NOT NULL, detail TEXT NOT NULL, at_ms INTEGER) "
      "WITHOUT ROWID;"));
  if (!s.ok()) return s;
  {
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'incarnation'");
    if (q.Step() == SQLITE_ROW) {
      incarnation_ =
          reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0));
    }
  }
  if (incarnation_.empty()) {
    incarnation_ = NewIncarnation(options_.incarnation_seed);
    Stmt put(db_, "INSERT INTO meta(key, value) VALUES('incarnation', ?1)");
    if (absl::Status s = put.Bind(1, incarnation_).Run(); !s.ok()) return s;
  }
  auto meta = [this](const char* key) -> uint64_t {
    Stmt q(db_, "SELECT value FROM meta WHERE key = ?1");
    q.Bind(1, std::string(key));
    return q.Step() == SQLITE_ROW
               ? static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0))
               : 0;
  };
  last_sequence_ = meta("last_sequence");
  twin_version_ = meta("twin_version");
  {
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'twin_desired'");
    if (q.Step() == SQLITE_ROW && sqlite3_column_text(q.get(), 0) != nullptr) {
      twin_desired_ =
          reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0));
    }
  }
  for (int i = 0; i < 5; ++i) *CounterOf(counters_, i) = meta(kCounterKeys[i]);
  Stmt sums(db_,
            "SELECT count(*), coalesce(sum(bytes), 0), min(seq) "
            "FROM readings");
  if (sums.Step() != SQLITE_ROW) {
    return absl::InternalError("edge store: cannot read the buffer");
  }
  count_ = static_cast<uint64_t>(sqlite3_column_int64(sums.get(), 0));
  bytes_ = static_cast<uint64_t>(sqlite3_column_int64(sums.get(), 1));
  oldest_ = count_ == 0
                ? last_sequence_ + 1
                : static_cast<uint64_t>(sqlite3_column_int64(sums.get(), 2));
  return absl::OkStatus();
}

absl::Status EdgeStore::SaveCounters() {
  Stmt put(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  for (int i = 0; i < 5; ++i) {
    sqlite3_reset(put.get());
    put.Bind(1, std::string(kCounterKeys[i]))
        .Bind(2, static_cast<int64_t>(*CounterOf(counters_, i)));
    if (absl::Status s = put.Run(); !s.ok()) return s;
  }
  sqlite3_reset(put.get());
  put.Bind(1, std::string("last_sequence"))
      .Bind(2, static_cast<int64_t>(last_sequence_));
  return put.Run();
}

uint64_t EdgeStore::oldest() const { return oldest_; }

absl::Status EdgeStore::DropWhere(const std::string& where, int64_t arg,
                                  uint64_t* counter, int64_t arg2) {
  Stmt del(db_, absl::StrCat("DELETE FROM readings WHERE ", where,
                             " RETURNING bytes"));
  del.Bind(1, arg);
  if (sqlite3_bind_parameter_count(del.get()) >= 2) del.Bind(2, arg2);
  int rc;
  while ((rc = del.Step()) == SQLITE_ROW) {
    bytes_ -= static_cast<uint64_t>(sqlite3_column_int64(del.get(), 0));
    --count_;
    if (counter != nullptr) ++*counter;
  }
  if (rc != SQLITE_DONE) {
    return absl::InternalError(
        absl::StrCat("edge store: ", sqlite3_errmsg(db_)));
  }
  Stmt min(db_, "SELECT min(seq) FROM readings");
  oldest_ = min.Step() == SQLITE_ROW &&
                    sqlite3_column_type(min.get(), 0) != SQLITE_NULL
                ? static_cast<uint64_t>(sqlite3_column_int64(min.get(), 0))
                : last_sequence_ + 1;
  return absl::OkStatus();
}

absl::Status EdgeStore::MakeRoom(uint64_t need) {
  while (count_ > 0 && bytes_ + need > options_.max_bytes) {
    // The oldest in bounded steps, until it fits.
    if (absl::Status s =
            DropWhere("seq IN (SELECT seq FROM readings ORDER BY seq LIMIT ?1)",
                      64, nullptr);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> EdgeStore::Append(Reading& r, int64_t now_ms) {
  const uint64_t need = ReadingBytes(r);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [this](absl::Status s) {
    Exec("ROLLBACK").IgnoreError();
    Init().IgnoreError();  // Back to what the file holds.
    return s;
  };
  const bool full = bytes_ + need > options_.max_bytes;
  if (full && options_.policy == FullPolicy::kRejectNew) {
    ++counters_.rejected_full;
    if (absl::Status s = SaveCounters(); !s.ok()) return fail(s);
    if (absl::Status s = Exec("COMMIT"); !s.ok()) return fail(s);
    return false;
  }
  if (full) {
    const uint64_t before = count_;
    if (absl::Status s = MakeRoom(need); !s.ok()) return fail(s);
    counters_.dropped_full += before - count_;
  }
  r.sequence = last_sequence_ + 1;
  Stmt put(db_,
           "INSERT INTO readings(seq, sensor, value, unit, device_time_ms, "
           "stored_ms, bytes) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  put.Bind(1, static_cast<int64_t>(r.sequence))
      .Bind(2, r.sensor)
      .BindReal(3, r.value)
      .Bind(4, r.unit)
      .Bind(5, r.device_time_ms)
      .Bind(6, now_ms)
      .Bind(7, static_cast<int64_t>(need));
  if (absl::Status s = put.Run(); !s.ok()) return fail(s);
  last_sequence_ = r.sequence;
  ++counters_.stored;
  if (count_ == 0) oldest_ = r.sequence;
  ++count_;
  bytes_ += need;
  if (absl::Status s = SaveCounters(); !s.ok()) return fail(s);
  if (absl::Status s = Exec("COMMIT"); !s.ok()) return fail(s);
  return true;
}

absl::Status EdgeStore::DropExpired(int64_t now_ms) {
  if (count_ == 0) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = DropWhere("stored_ms < ?1", now_ms - options_.max_age_ms,
                             &counters_.dropped_age);
  if (s.ok()) s = SaveCounters();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    Init().IgnoreError();
  }
  return s;
}

absl::StatusOr<std::vector<Reading>> EdgeStore::Pending(uint64_t after,
                                                        size_t max) {
  Stmt q(db_,
         "SELECT seq, sensor, value, unit, device_time_ms FROM readings "
         "WHERE seq > ?1 ORDER BY seq LIMIT ?2");
  q.Bind(1, static_cast<int64_t>(std::min(after, kMaxSequence)))
      .Bind(2, static_cast<int64_t>(max));
  std::vector<Reading> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    Reading r;
    r.sequence = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
    r.sensor = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 1));
    r.value = sqlite3_column_double(q.get(), 2);
    r.unit = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 3));
    r.device_time_ms = sqlite3_column_int64(q.get(), 4);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) {
    return absl::InternalError(
        absl::StrCat("edge store: ", sqlite3_errmsg(db_)));
  }
  return out;
}

absl::Status EdgeStore::Acked(uint64_t sequence) {
  if (count_ == 0 || sequence < oldest_) return absl::OkStatus();
  return DropWhere("seq <= ?1",
                   static_cast<int64_t>(std::min(sequence, kMaxSequence)),
                   nullptr);
}

absl::Status EdgeStore::Refused(uint64_t first, uint64_t last) {
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s =
      DropWhere("seq >= ?1 AND seq <= ?2",
                static_cast<int64_t>(std::min(first, kMaxSequence)),
                &counters_.refused_by_hub,
                static_cast<int64_t>(std::min(last, kMaxSequence)));
  if (s.ok()) s = SaveCounters();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    Init().IgnoreError();
  }
  return s;
}

absl::StatusOr<Outcome> EdgeStore::ExecuteOnce(const std::string& id,
                                               const Run& run) {
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Stmt seen(db_, "SELECT result, detail FROM executed WHERE id = ?1");
  seen.Bind(1, id);
  if (seen.Step() == SQLITE_ROW) {
    Outcome o;
    o.result = static_cast<CommandStatus>(sqlite3_column_int(seen.get(), 0));
    o.detail =
        reinterpret_cast<const char*>(sqlite3_column_text(seen.get(), 1));
    Exec("COMMIT").IgnoreError();
    return o;
  }
  Outcome o = run(db_);
  Stmt put(db_, "INSERT INTO executed(id, result, detail) VALUES(?1, ?2, ?3)");
  put.Bind(1, id).Bind(2, static_cast<int64_t>(o.result)).Bind(3, o.detail);
  absl::Status s = put.Run();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  // Answered only once the record survives a power cut: a redelivery
  // must find it.
  if (absl::Status d = MakeDurable(); !d.ok()) return d;
  return o;
}

absl::Status EdgeStore::MakeDurable() {
  if (!options_.sync_every_commit) {
    const int rc = sqlite3_wal_checkpoint_v2(
        db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return absl::InternalError(
          absl::StrCat("edge store: checkpoint: ", sqlite3_errmsg(db_)));
    }
  }
  durable_sequence_ = last_sequence_;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EdgeStore::Executed() {
  Stmt q(db_, "SELECT count(*) FROM executed");
  if (q.Step() != SQLITE_ROW) {
    return absl::InternalError("edge store: cannot count commands");
  }
  return sqlite3_column_int64(q.get(), 0);
}

absl::Status EdgeStore::SetTwin(uint64_t version,
                                const std::string& desired_json) {
  // One statement: both rows or neither.
  Stmt put(db_,
           "INSERT OR REPLACE INTO meta(key, value) "
           "VALUES('twin_version', ?1), ('twin_desired', ?2)");
  put.Bind(1, static_cast<int64_t>(std::min(version, kMaxSequence)))
      .Bind(2, desired_json);
  if (absl::Status s = put.Run(); !s.ok()) return s;
  twin_version_ = version;
  twin_desired_ = desired_json;
  return absl::OkStatus();
}

}  // namespace raftsql::edge
