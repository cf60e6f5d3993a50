#include "sm/anomaly_functions.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>

namespace raftsql::sm {
namespace {

// Each aggregate's state lives in SQLite's aggregate context (zeroed on
// first use): plain data only.
struct Ewma {
  double s;
  bool any;
};
struct Moments {  // Welford's running mean and variance, and the last x.
  double mean, m2, last;
  int64_t n;
};
struct Rate {
  double x0, t0, x1, t1;
  int64_t n;
};
struct Range {
  double lo, hi;
  double eps;
  int64_t n;
};
struct Gap {
  double prev, gap;
  int64_t n;
};

bool Null(sqlite3_value* v) { return sqlite3_value_type(v) == SQLITE_NULL; }

template <typename T>
T* State(sqlite3_context* ctx) {
  return static_cast<T*>(sqlite3_aggregate_context(ctx, sizeof(T)));
}
template <typename T>
T* StateIfAny(sqlite3_context* ctx) {
  return static_cast<T*>(sqlite3_aggregate_context(ctx, 0));
}

void EwmaStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (Null(argv[0])) return;
  Ewma* e = State<Ewma>(ctx);
  if (e == nullptr) return sqlite3_result_error_nomem(ctx);
  const double alpha = std::clamp(sqlite3_value_double(argv[1]), 0.0, 1.0);
  const double x = sqlite3_value_double(argv[0]);
  e->s = e->any ? alpha * x + (1 - alpha) * e->s : x;
  e->any = true;
}
void EwmaFinal(sqlite3_context* ctx) {
  Ewma* e = StateIfAny<Ewma>(ctx);
  if (e == nullptr || !e->any) return sqlite3_result_null(ctx);
  sqlite3_result_double(ctx, e->s);
}

void ZStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (Null(argv[0])) return;
  Moments* m = State<Moments>(ctx);
  if (m == nullptr) return sqlite3_result_error_nomem(ctx);
  const double x = sqlite3_value_double(argv[0]);
  ++m->n;
  const double d = x - m->mean;
  m->mean += d / static_cast<double>(m->n);
  m->m2 += d * (x - m->mean);
  m->last = x;
}
void ZFinal(sqlite3_context* ctx) {
  Moments* m = StateIfAny<Moments>(ctx);
  if (m == nullptr || m->n < 2) return sqlite3_result_null(ctx);
  const double sd = std::sqrt(m->m2 / static_cast<double>(m->n));
  sqlite3_result_double(ctx, sd == 0 ? 0.0 : (m->last - m->mean) / sd);
}

void RateStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (Null(argv[0]) || Null(argv[1])) return;
  Rate* r = State<Rate>(ctx);
  if (r == nullptr) return sqlite3_result_error_nomem(ctx);
  const double x = sqlite3_value_double(argv[0]);
  const double t = sqlite3_value_double(argv[1]);
  if (r->n++ == 0) {
    r->x0 = x;
    r->t0 = t;
  }
  r->x1 = x;
  r->t1 = t;
}
void RateFinal(sqlite3_context* ctx) {
  Rate* r = StateIfAny<Rate>(ctx);
  if (r == nullptr || r->n < 2 || r->t1 == r->t0) {
    return sqlite3_result_null(ctx);
  }
  sqlite3_result_double(ctx, (r->x1 - r->x0) / (r->t1 - r->t0));
}

void StuckStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (Null(argv[0])) return;
  Range* r = State<Range>(ctx);
  if (r == nullptr) return sqlite3_result_error_nomem(ctx);
  const double x = sqlite3_value_double(argv[0]);
  r->eps = sqlite3_value_double(argv[1]);
  r->lo = r->n == 0 ? x : std::min(r->lo, x);
  r->hi = r->n == 0 ? x : std::max(r->hi, x);
  ++r->n;
}
void StuckFinal(sqlite3_context* ctx) {
  Range* r = StateIfAny<Range>(ctx);
  sqlite3_result_int(ctx, r != nullptr && r->n >= 2 && r->hi - r->lo <= r->eps);
}

void GapStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (Null(argv[0])) return;
  Gap* g = State<Gap>(ctx);
  if (g == nullptr) return sqlite3_result_error_nomem(ctx);
  const double t = sqlite3_value_double(argv[0]);
  if (g->n++ > 0) g->gap = std::max(g->gap, std::fabs(t - g->prev));
  g->prev = t;
}
void GapFinal(sqlite3_context* ctx) {
  Gap* g = StateIfAny<Gap>(ctx);
  if (g == nullptr || g->n < 2) return sqlite3_result_null(ctx);
  sqlite3_result_double(ctx, g->gap);
}

}  // namespace

absl::Status InstallAnomalyFunctions(sqlite3* db) {
  constexpr int kFlags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  const struct {
    const char* name;
    int args;
    void (*step)(sqlite3_context*, int, sqlite3_value**);
    void (*final)(sqlite3_context*);
  } kFunctions[] = {
      {"ewma", 2, EwmaStep, EwmaFinal},  {"zscore", 1, ZStep, ZFinal},
      {"rate", 2, RateStep, RateFinal},  {"stuck", 2, StuckStep, StuckFinal},
      {"max_gap", 1, GapStep, GapFinal},
  };
  for (const auto& f : kFunctions) {
    if (sqlite3_create_function(db, f.name, f.args, kFlags, nullptr, nullptr,
                                f.step, f.final) != SQLITE_OK) {
      return absl::InternalError(
          std::string("cannot register the anomaly function ") + f.name);
    }
  }
  return absl::OkStatus();
}

}  // namespace raftsql::sm
