#include "bench/http_load.h"

#include <httplib.h>

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

// rqlite's form: [["INSERT ... VALUES(?,?),(?,?)...", k1, "value-k1", ...]]
std::string InsertBody(int64_t key, int rows) {
  std::string sql = "INSERT INTO bench(k, v) VALUES ";
  std::string params;
  for (int i = 0; i < rows; ++i) {
    absl::StrAppend(&sql, i ? ",(?,?)" : "(?,?)");
    absl::StrAppend(&params, ",", key + i, ",\"value-", key + i, "\"");
  }
  return absl::StrCat("[[\"", sql, "\"", params, "]]");
}

// The request failed, or rqlite's shape put an error in a result.
std::string Failure(const httplib::Result& r) {
  if (!r) return absl::StrCat("HTTP: ", httplib::to_string(r.error()));
  if (r->status != 200) {
    return absl::StrCat("HTTP ", r->status, ": ", r->body.substr(0, 200));
  }
  if (r->body.find("\"error\"") != std::string::npos) {
    return r->body.substr(0, 200);
  }
  return "";
}

void Client(const HttpLoadOptions& o, int index, std::atomic<int64_t>& next,
            HttpLoadResult& out) {
  httplib::Client http(absl::StrCat("http://", o.endpoint));
  http.set_keep_alive(true);
  http.set_tcp_nodelay(
      true);  // As curl does: no 40 ms Nagle wait for the body.
  http.set_connection_timeout(5);
  http.set_read_timeout(10);
  http.set_write_timeout(10);
  std::mt19937_64 rng(index + 1);
  int total = 0;
  for (const auto& [name, w] : o.mix) total += w;
  while (true) {
    const int64_t op = next.fetch_add(1);
    if (op >= o.ops || Clock::now() >= o.deadline) return;
    int pick = static_cast<int>(rng() % static_cast<uint64_t>(total));
    std::string kind;
    for (const auto& [name, w] : o.mix) {
      if ((pick -= w) < 0) {
        kind = name;
        break;
      }
    }
    const auto t0 = Clock::now();
    const int64_t k = static_cast<int64_t>(rng() % 1000) - 1000;
    const httplib::Result r =
        kind == "insert" || kind == "batch"
            ? http.Post("/db/execute",
                        InsertBody(o.key_base + 1 + op * 100,
                                   kind == "batch" ? 100 : 1),
                        "application/json")
            : http.Get(
                  "/db/query",
                  httplib::Params{
                      {"q", absl::StrCat("SELECT v FROM bench WHERE k = ", k)},
                      {"level",
                       kind == "select_lin" ? "linearizable" : "none"}},
                  httplib::Headers{});
    const std::string failed = Failure(r);
    if (failed.empty()) {
      out.latencies_us.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    } else if (out.errors++ == 0) {
      out.first_error = failed;
    }
  }
}

}  // namespace

std::vector<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& o) {
  std::vector<HttpLoadResult> results(o.concurrency);
  std::atomic<int64_t> next{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < o.concurrency; ++i) {
    threads.emplace_back(
        [&o, i, &next, &results] { Client(o, i, next, results[i]); });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace raftsql::bench
