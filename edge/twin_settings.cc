#include "edge/twin_settings.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "edge/hub_sql.h"

namespace raftsql::edge {
namespace {

struct Finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, Finalize>;

Stmt Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  return Stmt(s);
}

void BindText(sqlite3_stmt* s, int i, const std::string& text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
}

struct Range {
  const char* key;
  int64_t min;
  int64_t max;
};

constexpr Range kRanges[] = {
    {"sample_ms", 10, 3'600'000},
    {"batch_ms", 0, 600'000},
    {"batch_max", 1, static_cast<int64_t>(kMaxReadingsPerUpload)},
};

}  // namespace

TwinSettings ApplyDesired(sqlite3* db, const TwinSettings& defaults,
                          const std::string& desired_json) {
  TwinSettings out = defaults;
  out.refused.clear();
  if (desired_json.empty()) return out;
  Stmt each = Prepare(db,
                      "SELECT key, CASE WHEN type = 'integer' THEN value END "
                      "FROM json_each(?1) ORDER BY id");
  Stmt object = Prepare(db, "SELECT json_type(?1) = 'object'");
  if (each == nullptr || object == nullptr) return out;
  BindText(object.get(), 1, desired_json);
  if (sqlite3_step(object.get()) != SQLITE_ROW ||
      sqlite3_column_int(object.get(), 0) != 1) {
    out.refused.push_back({"", "the desired document is not a JSON object"});
    return out;
  }
  BindText(each.get(), 1, desired_json);
  while (sqlite3_step(each.get()) == SQLITE_ROW) {
    const char* key =
        reinterpret_cast<const char*>(sqlite3_column_text(each.get(), 0));
    const std::string name = key == nullptr ? "" : key;
    const Range* range = nullptr;
    for (const Range& r : kRanges) {
      if (name == r.key) range = &r;
    }
    if (range == nullptr) {
      out.refused.push_back({name, "not a setting of this agent"});
      continue;
    }
    const int64_t v = sqlite3_column_int64(each.get(), 1);
    if (sqlite3_column_type(each.get(), 1) != SQLITE_INTEGER ||
        v < range->min || v > range->max) {
      out.refused.push_back({name, absl::StrCat("an integer from ", range->min,
                                                " to ", range->max)});
      continue;
    }
    if (name == "sample_ms") out.sample_ms = v;
    if (name == "batch_ms") out.batch_ms = v;
    if (name == "batch_max") out.batch_max = static_cast<size_t>(v);
  }
  return out;
}

std::string ReportedJson(sqlite3* db, const TwinSettings& s) {
  std::string doc =
      absl::StrCat("{\"sample_ms\":", s.sample_ms, ",\"batch_ms\":", s.batch_ms,
                   ",\"batch_max\":", s.batch_max, "}");
  if (s.refused.empty()) return doc;
  // The keys come from the hub's document: SQLite quotes them.
  Stmt add = Prepare(db,
                     "SELECT json_set(?1, '$.refused', json_patch("
                     "coalesce(json_extract(?1, '$.refused'), '{}'), "
                     "json_object(?2, ?3)))");
  if (add == nullptr) return doc;
  for (const auto& [key, why] : s.refused) {
    sqlite3_reset(add.get());
    BindText(add.get(), 1, doc);
    BindText(add.get(), 2, key);
    BindText(add.get(), 3, why);
    if (sqlite3_step(add.get()) != SQLITE_ROW) break;
    doc = reinterpret_cast<const char*>(sqlite3_column_text(add.get(), 0));
  }
  return doc;
}

}  // namespace raftsql::edge
