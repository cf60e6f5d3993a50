// The twin settings an edge agent understands: a desired document (the
// hub's, patched by operators and rules) applied over the agent's own
// defaults, and the reported document that says what it runs with.
//
//   sample_ms   how often the sources are read, 10 to 3,600,000
//   batch_ms    how long a reading may wait for its upload, 0 to 600,000
//   batch_max   readings per upload, 1 to kMaxReadingsPerUpload
//
// A desired key the agent does not know, or a value out of its range, is
// left out and named in the reported document's "refused" object with the
// reason (so the hub's twin delta shows it, and why). A key removed from
// the desired document returns to the agent's default.
#ifndef RAFTSQL_EDGE_TWIN_SETTINGS_H_
#define RAFTSQL_EDGE_TWIN_SETTINGS_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace raftsql::edge {

struct TwinSettings {
  int64_t sample_ms = 100;
  int64_t batch_ms = 200;
  size_t batch_max = 100;
  // (key, reason) for each desired key not applied, in document order.
  std::vector<std::pair<std::string, std::string>> refused;

  bool operator==(const TwinSettings&) const = default;
};

// `defaults` with `desired_json` applied (read with `db`'s JSON
// functions); an empty or invalid document applies nothing (an invalid one
// is refused as a whole, under the key "").
TwinSettings ApplyDesired(sqlite3* db, const TwinSettings& defaults,
                          const std::string& desired_json);

// The reported document: every setting's value, and "refused" if any.
std::string ReportedJson(sqlite3* db, const TwinSettings& s);

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_TWIN_SETTINGS_H_
