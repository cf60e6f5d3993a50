#include "bench/http_load.h"

#include <httplib.h>

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

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

// A read's level=: select is none, select_weak weak, select_lin
// linearizable, select_strong strong.
std::string Level(const std::string& kind) {
  if (kind == "select_weak") return "weak";
  if (kind == "select_lin") return "linearizable";
  if (kind == "select_strong") return "strong";
  return "none";
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
                      {"level", Level(kind)}},
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

absl::StatusOr<int64_t> PrepareHttpTable(const std::string& endpoint) {
  httplib::Client http(absl::StrCat("http://", endpoint));
  http.set_connection_timeout(5);
  http.set_read_timeout(20);
  // A leader may not be elected yet: retried for 20 s.
  const auto until = Clock::now() + std::chrono::seconds(20);
  std::string failed;
  while (Clock::now() < until) {
    const httplib::Result created = http.Post(
        "/db/execute",
        "[\"CREATE TABLE IF NOT EXISTS bench (k INTEGER PRIMARY KEY, v "
        "TEXT)\"]",
        "application/json");
    failed = Failure(created);
    if (failed.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!failed.empty()) return absl::UnavailableError(failed);
  const httplib::Result top =
      http.Get("/db/query",
               httplib::Params{{"q", "SELECT COALESCE(MAX(k), 0) FROM bench"},
                               {"level", "strong"}},
               httplib::Headers{});
  failed = Failure(top);
  if (!failed.empty()) return absl::UnavailableError(failed);
  // {"results":[{"columns":[...],"types":[...],"values":[[N]]}]}
  const nlohmann::json doc =
      nlohmann::json::parse(top->body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json* values = nullptr;
  if (doc.is_object() && doc.contains("results") && doc["results"].is_array() &&
      !doc["results"].empty()) {
    const nlohmann::json& first = doc["results"][0];
    if (first.contains("values")) values = &first["values"];
  }
  if (values == nullptr || !values->is_array() || values->empty() ||
      !(*values)[0].is_array() || (*values)[0].empty() ||
      !(*values)[0][0].is_number_integer()) {
    return absl::UnavailableError(
        absl::StrCat("no largest key in ", top->body.substr(0, 200)));
  }
  return (*values)[0][0].get<int64_t>();
}

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
