#include "tests/verify_util.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <thread>

namespace raftsql::verify {

namespace {
const Clock::time_point kStart = Clock::now();
}  // namespace

void Log(const std::string& what) {
  const double s = std::chrono::duration<double>(Clock::now() - kStart).count();
  std::printf("[%7.3fs] %s\n", s, what.c_str());
  std::fflush(stdout);
}

void Check(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

v1::ExecuteRequest Sql(const std::string& sql, std::vector<int64_t> params) {
  v1::ExecuteRequest r;
  v1::Statement* s = r.add_statements();
  s->set_sql(sql);
  for (int64_t p : params) s->add_positional()->set_integer(p);
  return r;
}

v1::QueryRequest Read(const std::string& sql, bool linearizable) {
  v1::QueryRequest q;
  q.mutable_statement()->set_sql(sql);
  q.set_consistency(linearizable ? v1::LINEARIZABLE : v1::NONE);
  return q;
}

// A client that talks to one node only (so followers must forward).
net::Client Pinned(LocalCluster& c, int id) {
  net::ClientOptions o = c.ClientOptionsFor();
  o.attempts = 1;
  return net::Client({c.Endpoint(id)}, o);
}

int64_t Count(net::Client& client, const std::string& sql, bool lin) {
  v1::QueryResponse r = Ok(client.Query(Read(sql, lin)), "read " + sql);
  Check(r.rows_size() == 1 && r.rows(0).values_size() == 1,
        "count query returned no single value");
  return r.rows(0).values(0).integer();
}

int64_t CountOnEveryNode(LocalCluster& c, int nodes, const std::string& sql,
                         const std::string& when) {
  int64_t agreed = -1;
  for (int node = 1; node <= nodes; ++node) {
    net::Client one = Pinned(c, node);
    const int64_t n = Count(one, sql, false);
    Check(agreed < 0 || n == agreed, "the nodes disagree " + when);
    agreed = n;
  }
  return agreed;
}

// Waits until every running node applied the same index (at least `min`)
// and reports the same divergence hash.
void WaitConverged(LocalCluster& c, int nodes, uint64_t min, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (Clock::now() < deadline) {
    std::set<std::pair<uint64_t, uint64_t>> seen;
    bool all = true;
    last.clear();
    for (int i = 1; i <= nodes; ++i) {
      if (!c.Running(i)) continue;
      auto s = c.client().Status(c.Endpoint(i));
      if (!s.ok()) {
        all = false;
        absl::StrAppend(&last, " node", i, "=unreachable");
        continue;
      }
      seen.insert({s->applied_index(), s->divergence_hash()});
      absl::StrAppend(&last, " node", i, "=", s->applied_index(), "/",
                      s->divergence_hash());
      if (s->applied_index() < min) all = false;
    }
    if (all && seen.size() == 1) {
      Log("converged:" + last);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Failure("replicas did not converge:" + last);
}

int WaitLeader(LocalCluster& c, int not_this) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    int leader = Ok(c.WaitForLeader(30'000), "leader election");
    if (leader != not_this) return leader;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Failure("no new leader");
}

uint64_t MaxApplied(LocalCluster& c, int nodes) {
  uint64_t m = 0;
  for (int i = 1; i <= nodes; ++i) {
    if (!c.Running(i)) continue;
    auto s = c.client().Status(c.Endpoint(i));
    if (s.ok()) m = std::max(m, s->applied_index());
  }
  return m;
}

StoreFacts ReadStore(const std::string& path) {
  StoreFacts f;
  sqlite3* db = nullptr;
  Check(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
            SQLITE_OK,
        "open " + path);
  auto value = [db](const std::string& sql) -> std::string {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  };
  f.incarnation = value("SELECT value FROM meta WHERE key = 'incarnation'");
  f.stored =
      std::atoll(value("SELECT value FROM meta WHERE key = 'stored'").c_str());
  f.dropped =
      std::atoll(value("SELECT coalesce(sum(value), 0) FROM meta WHERE key IN "
                       "('dropped_full', 'dropped_age', 'rejected_full', "
                       "'refused_by_hub')")
                     .c_str());
  f.executed = std::atoll(value("SELECT count(*) FROM executed").c_str());
  sqlite3_close(db);
  return f;
}

}  // namespace raftsql::verify
