// Per-device anomaly functions for rules (and any SQL): aggregates over the
// rows of a window, taken in the order the query gives them (order the
// window, e.g. a subquery with ORDER BY seq). Pure and deterministic, so
// they are installed on every connection, the write connection included,
// and replicas agree wherever they are used.
//
//   ewma(x, alpha)   exponentially weighted mean: s = alpha*x + (1-alpha)*s
//   zscore(x)        how many standard deviations the last x lies from the
//                    window's mean (0 when they are all equal)
//   rate(x, t)       (last x - first x) / (last t - first t)
//   stuck(x, eps)    1 if at least two rows and max(x) - min(x) <= eps
//   max_gap(t)       the largest step between consecutive t (dropouts)
//
// NULL x (or t) rows are skipped; too few rows give NULL (rate, max_gap,
// zscore: fewer than two).
#ifndef RAFTSQL_SM_ANOMALY_FUNCTIONS_H_
#define RAFTSQL_SM_ANOMALY_FUNCTIONS_H_

#include "absl/status/status.h"

struct sqlite3;

namespace raftsql::sm {

absl::Status InstallAnomalyFunctions(sqlite3* db);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_ANOMALY_FUNCTIONS_H_
