// The HTTP API as rqlite's clients use it: a one-node server on loopback
// (real RocksDB, SQLite, gRPC) with its HTTP listener, spoken to with
// plain HTTP requests (httplib's client) and the JSON of rqlite's docs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "net/client.h"
#include "nlohmann/json.hpp"
#include "obs/log.h"
#include "server/http_frontend.h"
#include "server/one_node_server.h"
#include "tools/certs.h"

namespace raftsql::server {
namespace {

using nlohmann::json;

json Body(const httplib::Result& r) {
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

// A gzip stream's content (at most `limit` bytes of it).
std::string Gunzip(const std::string& gz, size_t limit) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out(limit + 1, '\0');
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    StartHttp({});
  }

  void StartHttp(HttpOptions o) {
    o.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<HttpFrontend>> http =
        HttpFrontend::Start(&server_.node(), o);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_->port());
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const char* type = "application/json") {
    return client_->Post(path.c_str(), body, type);
  }

  // `request` sent as is on a new connection; the first 4 KiB answered.
  std::string RawRequest(const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(http_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        send(fd, request.data(), request.size(), 0) ==
            static_cast<ssize_t>(request.size())) {
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) answer.assign(buf, n);
    }
    close(fd);
    return answer;
  }

  OneNodeServer server_;
  std::unique_ptr<HttpFrontend> http_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpTest, WritesAndReadsAsRqlitesDocsShowThem) {
  // rqlite's docs write "fiona" in double quotes: raftsql's SQLite takes
  // double quotes for identifiers only (SQLite's advice), so 'fiona'.
  httplib::Result r = Post("/db/execute?pretty&timings", R"js([
      "CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER)"
    ])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  json b = Body(r);
  ASSERT_EQ(b["results"].size(), 1u);
  EXPECT_FALSE(b["results"][0].contains("error")) << r->body;
  EXPECT_TRUE(b["time"].is_number());
  EXPECT_NE(r->body.find("\n    \"results\""), std::string::npos);

  r = Post("/db/execute", R"js([
      "INSERT INTO foo(name, age) VALUES('fiona', 20)",
      ["INSERT INTO foo(name, age) VALUES(?, ?)", "declan", 25],
      ["INSERT INTO foo(name, age) VALUES(:name, :age)",
       {"name": "sinead", "age": 30}]
    ])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r), json::parse(R"js({"results": [
      {"last_insert_id": 1, "rows_affected": 1},
      {"last_insert_id": 2, "rows_affected": 1},
      {"last_insert_id": 3, "rows_affected": 1}]})js"));

  r = client_->Get("/db/query?q=SELECT%20*%20FROM%20foo%20WHERE%20id%3C3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Body(r), json::parse(R"js({"results": [{
      "columns": ["id", "name", "age"],
      "types": ["integer", "text", "integer"],
      "values": [[1, "fiona", 20], [2, "declan", 25]]}]})js"));

  r = Post("/db/query?associative&level=none",
           R"js([["SELECT name FROM foo WHERE age > ?", 26]])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r), json::parse(R"js({"results": [{
      "types": {"name": "text"}, "rows": [{"name": "sinead"}]}]})js"));
}

TEST_F(HttpTest, TheUnifiedEndpointRunsReadsAndWritesInOrder) {
  ASSERT_TRUE(
      Post("/db/execute",
           R"js(["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"])js"));
  httplib::Result r = Post("/db/request", R"js([
      ["INSERT INTO foo(name) VALUES(?)", "fiona"],
      ["SELECT * FROM foo"],
      ["SELECT * FROM bar"],
      ["INSERT INTO foo(name) VALUES(?)", "declan"],
      "SELECT count(*) AS n FROM foo"
    ])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json b = Body(r);
  ASSERT_EQ(b["results"].size(), 5u) << r->body;
  EXPECT_EQ(b["results"][0], json::parse(R"js({"last_insert_id": 1,
                                              "rows_affected": 1})js"));
  EXPECT_EQ(b["results"][1]["values"], json::parse(R"js([[1, "fiona"]])js"));
  EXPECT_NE(b["results"][2]["error"].get<std::string>().find("no such table"),
            std::string::npos);
  EXPECT_EQ(b["results"][3]["last_insert_id"], 2);
  EXPECT_EQ(b["results"][4]["values"], json::parse("[[2]]"));
  // Writes alone go as one command, its index given on request.
  r = Post("/db/request?raft_index",
           R"js(["INSERT INTO foo(name) VALUES('x')"])js");
  ASSERT_TRUE(r);
  EXPECT_GT(Body(r)["raft_index"].get<uint64_t>(), 0u) << r->body;
  // A transaction here holds writes only.
  r = Post("/db/request?transaction",
           R"js(["INSERT INTO foo(name) VALUES('y')", "SELECT 1"])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(Body(r)["error"].get<std::string>().find("writes only"),
            std::string::npos);
}

TEST_F(HttpTest, AFailingStatementHasItsErrorInItsPlace) {
  ASSERT_TRUE(
      Post("/db/execute", R"js(["CREATE TABLE t (v INTEGER UNIQUE)"])js"));
  // A statement that does not parse: the others still run.
  httplib::Result r = Post("/db/execute", R"js([
      "INSERT INTO t VALUES (1)", "INSERT INTO nonsense", "INSERT INTO t VALUES (2)"
    ])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json b = Body(r);
  ASSERT_EQ(b["results"].size(), 3u) << r->body;
  EXPECT_EQ(b["results"][0]["rows_affected"], 1);
  EXPECT_NE(b["results"][1]["error"].get<std::string>().find("incomplete"),
            std::string::npos)
      << r->body;
  EXPECT_EQ(b["results"][2]["rows_affected"], 1);
  // A constraint inside a transaction: nothing of it stays.
  r = Post("/db/execute?transaction",
           R"js(["INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (1)"])js");
  ASSERT_TRUE(r);
  b = Body(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(b["results"][1].contains("error")) << r->body;
  r = client_->Get("/db/query?q=SELECT%20count(*)%20FROM%20t");
  EXPECT_EQ(Body(r)["results"][0]["values"], json::parse("[[2]]"));
  // A write sent as a query is refused in its place.
  r = Post("/db/query", R"js(["INSERT INTO t VALUES (9)"])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(Body(r)["results"][0].contains("error")) << r->body;
}

TEST_F(HttpTest, BadRequestsGetClearErrorsAndWriteNothing) {
  ASSERT_TRUE(Post("/db/execute", R"js(["CREATE TABLE t (v)"])js"));
  httplib::Result r = Post("/db/execute", "[\"INSERT INTO t VALUES (1)\"");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(Body(r)["error"].get<std::string>().find("not valid JSON"),
            std::string::npos);
  r = Post("/db/execute",
           R"js([["INSERT INTO t VALUES (?)", {"a": [1, [2]]}]])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = client_->Get("/db/execute");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = client_->Get("/db/query");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = Post("/db/execute?timeout=soon", R"js(["INSERT INTO t VALUES (1)"])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  // Over the node's request limit (4 MiB encoded): 413.
  const std::string big(5 << 20, 'x');
  r = Post("/db/execute",
           absl::StrCat(R"js([["INSERT INTO t VALUES (?)", ")js", big, "\"]]"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body.substr(0, 200);
  // Over the body limit: 413 as soon as the headers say so, before the
  // body is read (a raw request that sends no body at all).
  EXPECT_EQ(RawRequest("POST /db/execute HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 17825792\r\n\r\n")
                .substr(0, 12),
            "HTTP/1.1 413");
  // Chunked bodies have no length to check: only /db/load takes them.
  EXPECT_EQ(RawRequest("POST /db/execute HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n")
                .substr(0, 12),
            "HTTP/1.1 411");
  r = client_->Get("/db/query?q=SELECT%20count(*)%20FROM%20t");
  EXPECT_EQ(Body(r)["results"][0]["values"], json::parse("[[0]]"));
}

TEST_F(HttpTest, BlobsGoInAsByteArraysAndComeBackAsBase64) {
  ASSERT_TRUE(Post("/db/execute", R"js(["CREATE TABLE b (v BLOB)"])js"));
  ASSERT_TRUE(Post("/db/execute",
                   R"js([["INSERT INTO b VALUES (?)", [0, 1, 255]]])js"));
  httplib::Result r =
      client_->Get("/db/query?q=SELECT%20v,%20typeof(v)%20FROM%20b");
  ASSERT_TRUE(r);
  EXPECT_EQ(
      Body(r)["results"][0]["values"],
      json::array({json::array(
          {absl::Base64Escape(std::string("\x00\x01\xff", 3)), "blob"})}));
}

TEST_F(HttpTest, StatusNodesAndHealthTellTheNodesState) {
  httplib::Result r = client_->Get("/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json b = Body(r);
  EXPECT_EQ(b["store"]["raft"]["state"], "Leader");
  EXPECT_EQ(b["store"]["leader"]["node_id"], "1");
  EXPECT_EQ(b["http"]["bind_addr"],
            absl::StrCat("http://127.0.0.1:", http_->port()));

  r = client_->Get("/nodes");
  ASSERT_TRUE(r);
  b = Body(r);
  ASSERT_TRUE(b.contains("1")) << r->body;
  EXPECT_EQ(b["1"]["reachable"], true);
  EXPECT_EQ(b["1"]["leader"], true);
  EXPECT_EQ(b["1"]["api_addr"],
            absl::StrCat("http://127.0.0.1:", http_->port()));
  r = client_->Get("/nodes?ver=2");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["nodes"].size(), 1u);

  r = client_->Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "[+]node ok\n[+]leader ok\n[+]store ok\n");
  r = client_->Get("/livez");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  // A stopped node is neither ready nor alive.
  server_.node().Shutdown();
  r = client_->Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("[-]node not ok"), std::string::npos) << r->body;
  r = client_->Get("/livez");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  r = Post("/db/execute", R"js(["CREATE TABLE u (v)"])js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_TRUE(Body(r).contains("error"));
}

TEST_F(HttpTest, MetricsAreInPrometheusTextFormat) {
  ASSERT_TRUE(Post("/db/execute", R"js(["CREATE TABLE t (v)"])js"));
  ASSERT_TRUE(Post("/db/execute", R"js(["INSERT INTO t VALUES (1)"])js"));
  ASSERT_TRUE(client_->Get("/nosuchpath"));
  net::Client grpc({server_.endpoint()});
  ASSERT_TRUE(grpc.Status(server_.endpoint()).ok());
  // httplib counts a request after its answer went: wait for all three.
  auto counted = [this] {
    const auto m = server_.node().request_metrics().Read();
    const auto writes = m.find({"http", "POST /db/execute", "200"});
    return writes != m.end() && writes->second.count == 2 &&
           m.count({"http", "GET other", "404"}) == 1;
  };
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!counted() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  httplib::Result r = client_->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = r->body;
  for (const char* want : {
           "# TYPE raftsql_raft_term gauge",
           "raftsql_raft_role{role=\"Leader\"} 1",
           "raftsql_raft_role{role=\"Follower\"} 0",
           "raftsql_raft_leader_id 1",
           "raftsql_raft_members{suffrage=\"voter\"} 1",
           "# TYPE raftsql_loop_iteration_seconds histogram",
           "raftsql_loop_iteration_seconds_bucket{le=\"+Inf\"}",
           "raftsql_loop_phase_seconds_count{phase=\"log\"}",
           "raftsql_loop_phase_seconds_count{phase=\"apply\"}",
           "# TYPE raftsql_log_syncs_total counter",
           "raftsql_sqlite_wal_bytes",
           "# TYPE raftsql_transport_send_queue_messages gauge",
           "raftsql_request_seconds_count{protocol=\"http\",method=\"POST "
           "/db/execute\",code=\"200\"} 2",
           "raftsql_request_seconds_count{protocol=\"http\",method=\"GET "
           "other\",code=\"404\"} 1",
           "raftsql_request_seconds_count{protocol=\"grpc\",method=\"/"
           "raftsql.v1.DatabaseService/Status\",code=\"OK\"} 1",
       }) {
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  }
  // The two writes (CREATE, INSERT) were proposed here.
  EXPECT_NE(m.find("raftsql_raft_proposals_total 2"), std::string::npos) << m;
}

// A backup taken while writes go on is one consistent state, and loads
// into another cluster with every row.
TEST_F(HttpTest, ABackupUnderWritesLoadsIntoAnotherClusterWhole) {
  ASSERT_TRUE(Post("/db/execute",
                   R"js(["CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)",
                         "CREATE INDEX tv ON t(v)"])js"));
  // Ids 1, 2, 3, ... one write each, from before the backup to after it:
  // a consistent image holds 1..n with no gap.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    for (int64_t id = 1; id <= 100'000 && !stop.load(); ++id) {
      sm::Command c;
      c.statements.push_back(
          sm::Statement{"INSERT INTO t VALUES (?, randomblob(200))",
                        {sm::Value::Integer(id)}});
      if (!server_.ExecuteOk(std::move(c)).ok()) break;
      written = id;
    }
  });
  while (written.load() < 500) std::this_thread::yield();
  httplib::Result r = client_->Get("/db/backup");
  const int64_t after = written.load();
  stop = true;
  writer.join();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
  const std::string file = server_.dir() + "/backup.sqlite";
  std::ofstream(file, std::ios::binary) << r->body;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto one = [db](const char* sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      out = t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    sqlite3_finalize(st);
    return out;
  };
  EXPECT_EQ(one("PRAGMA integrity_check"), "ok");
  const int64_t n = std::stoll(one("SELECT count(*) FROM t"));
  EXPECT_GE(n, 500);
  EXPECT_LE(n, after + 1);  // One write may have applied as it was read.
  EXPECT_EQ(one("SELECT max(id) FROM t"), std::to_string(n));  // No gap.
  const std::string sum = one("SELECT sum(length(v)) + sum(id) FROM t");
  sqlite3_close(db);

  // Another cluster loads it through Raft.
  OneNodeServer other;
  ASSERT_TRUE(other.Start().ok());
  HttpOptions o;
  o.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<HttpFrontend>> http =
      HttpFrontend::Start(&other.node(), o);
  ASSERT_TRUE(http.ok());
  httplib::Client c("127.0.0.1", (*http)->port());
  std::string body;
  {
    std::ifstream in(file, std::ios::binary);
    body.assign(std::istreambuf_iterator<char>(in), {});
  }
  r = c.Post("/db/load", body, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json b = Body(r);
  EXPECT_EQ(b["loaded"]["format"], "sqlite");
  EXPECT_EQ(b["loaded"]["rows"], n) << r->body;
  EXPECT_EQ(other.QueryValue("SELECT count(*) FROM t").integer, n);
  EXPECT_EQ(other.QueryValue("SELECT sum(length(v)) + sum(id) FROM t").integer,
            std::stoll(sum));
  EXPECT_EQ(other
                .QueryValue("SELECT count(*) FROM sqlite_schema WHERE name = "
                            "'tv'")
                .integer,
            1);
}

// rqlite's compress: the same file, gzipped as it streams.
TEST_F(HttpTest, ACompressedBackupIsTheFileGzipped) {
  ASSERT_TRUE(Post("/db/execute",
                   R"js(["CREATE TABLE t (v)",
                         "INSERT INTO t VALUES (randomblob(3000))",
                         "INSERT INTO t SELECT v FROM t",
                         "INSERT INTO t SELECT v FROM t"])js"));
  httplib::Result plain = client_->Get("/db/backup");
  httplib::Result gz = client_->Get("/db/backup?compress");
  ASSERT_TRUE(plain && gz);
  ASSERT_EQ(gz->status, 200) << gz->body.substr(0, 300);
  EXPECT_EQ(gz->get_header_value("Content-Type"), "application/gzip");
  EXPECT_NE(gz->get_header_value("Content-Disposition").find(".sqlite.gz"),
            std::string::npos);
  EXPECT_LT(gz->body.size(), plain->body.size());
  const std::string file = Gunzip(gz->body, plain->body.size());
  EXPECT_TRUE(file == plain->body)
      << file.size() << " against " << plain->body.size();  // No bytes printed.
}

TEST_F(HttpTest, ASqlBackupIsTextThatSqliteReadsBackAsTheSameRows) {
  ASSERT_TRUE(Post("/db/execute",
                   R"js(["CREATE TABLE t (id INTEGER PRIMARY KEY, v, w TEXT)",
                         "INSERT INTO t(v, w) VALUES (randomblob(300), 'it''s')",
                         "INSERT INTO t(v, w) SELECT v, w FROM t",
                         "INSERT INTO t(v, w) VALUES (2.5, NULL)",
                         "CREATE INDEX t_w ON t(w)"])js"));
  httplib::Result sql = client_->Get("/db/backup?fmt=sql");
  ASSERT_TRUE(sql);
  ASSERT_EQ(sql->status, 200) << sql->body.substr(0, 300);
  EXPECT_EQ(sql->get_header_value("Content-Type"), "application/sql");
  EXPECT_NE(sql->get_header_value("Content-Disposition").find(".sql\""),
            std::string::npos);
  EXPECT_EQ(
      sql->body.rfind("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n", 0), 0u)
      << sql->body.substr(0, 300);
  // The users' table and every other internal one stay out.
  EXPECT_EQ(sql->body.find("_raftsql"), std::string::npos);
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  ASSERT_EQ(sqlite3_exec(db, sql->body.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  const std::string check =
      "SELECT count(*) || '/' || sum(length(v)) || '/' || "
      "group_concat(DISTINCT w) || '/' || (SELECT count(*) FROM "
      "sqlite_schema WHERE name = 't_w') FROM t";
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, check.c_str(), -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  const std::string restored =
      reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(sm::Value::Text(restored), server_.QueryValue(check));
  EXPECT_EQ(restored, "3/603/it's/1");  // 2.5 is 3 characters.
  // Gzipped, the same text; an unknown format is refused.
  httplib::Result gz = client_->Get("/db/backup?fmt=sql&compress");
  ASSERT_TRUE(gz);
  ASSERT_EQ(gz->status, 200);
  EXPECT_EQ(Gunzip(gz->body, sql->body.size()), sql->body);
  httplib::Result csv = client_->Get("/db/backup?fmt=csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->status, 400) << csv->body;
  EXPECT_NE(csv->body.find("fmt=sql"), std::string::npos) << csv->body;
  // The copy it read is gone from the data directory.
  for (const auto& e :
       std::filesystem::directory_iterator(server_.dir() + "/data")) {
    EXPECT_EQ(e.path().filename().string().rfind("backup-", 0),
              std::string::npos)
        << e.path();
  }
}

TEST_F(HttpTest, LoadsOfTextAndOfDamagedFiles) {
  httplib::Result r = Post("/db/load",
                           "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"
                           "CREATE TABLE d (v TEXT);\n"
                           "INSERT INTO d VALUES ('a;b');\n"
                           "INSERT INTO d VALUES ('c');\nCOMMIT;\n",
                           "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Body(r)["loaded"]["statements"], 3);
  EXPECT_EQ(server_.QueryValue("SELECT group_concat(v, '|') FROM d"),
            sm::Value::Text("a;b|c"));
  // A statement that fails: the load stops there, saying how far it got.
  r = Post("/db/load",
           "INSERT INTO d VALUES ('e');\nINSERT INTO nosuch "
           "VALUES (1);\n",
           "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(Body(r)["error"].get<std::string>().find("no such table"),
            std::string::npos)
      << r->body;
  // ... as one command: the statement before it is not applied either.
  EXPECT_EQ(server_.QueryValue("SELECT count(*) FROM d").integer, 2);
  // A file that is not a sound database: refused, nothing written.
  std::string damaged("SQLite format 3\0", 16);
  damaged.append(8192, '\x5a');
  r = Post("/db/load", damaged, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  r = client_->Get("/db/load");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  // Its file is gone.
  for (const auto& f :
       std::filesystem::directory_iterator(server_.dir() + "/data")) {
    EXPECT_EQ(f.path().filename().string().rfind("load-", 0), std::string::npos)
        << f.path();
  }
}

// /v1: the gRPC API's calls in proto3 JSON, sessions included.
TEST_F(HttpTest, TheV1EndpointsSpeakTheProtocolInJson) {
  httplib::Result r = Post("/v1/execute", R"js({"statements": [
      {"sql": "CREATE TABLE v (a INTEGER, b TEXT)"}]})js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // Retried under one session and sequence: applied once.
  const std::string insert = R"js({"session_id": "77", "sequence": "1",
      "statements": [{"sql": "INSERT INTO v VALUES (?, ?)",
                      "positional": [{"integer": "5"}, {"text": "x"}]}]})js";
  r = Post("/v1/execute", insert);
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["results"][0]["rows_affected"], "1") << r->body;
  r = Post("/v1/execute", insert);
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["duplicate"], true) << r->body;
  r = Post("/v1/query", R"js({"statement": {"sql": "SELECT a, b FROM v"},
                              "consistency": "LINEARIZABLE"})js");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["rows"], json::parse(R"js([{"values": [{"integer": "5"},
                                          {"text": "x"}]}])js"))
      << r->body;
  EXPECT_EQ(Body(r)["declared_types"], json::parse(R"(["INTEGER", "TEXT"])"));
  r = Post("/v1/status", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["role"], "Leader") << r->body;
  r = Post("/v1/get_version", R"js({"table": "v"})js");
  ASSERT_TRUE(r);
  EXPECT_TRUE(Body(r).contains("version")) << r->body;
  r = Post("/v1/put_user", R"js({"name": "ops", "password": "long enough",
                                 "permissions": ["status"]})js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = Post("/v1/list_users", "");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("\"ops\""), std::string::npos) << r->body;
  // Errors: the code's name and HTTP status.
  r = Post("/v1/execute", R"js({"statements": [{"sql": 7}]})js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Body(r)["code"], "INVALID_ARGUMENT") << r->body;
  r = Post("/v1/query",
           R"js({"statement": {"sql": "SELECT * FROM nosuch"}})js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(Body(r)["error"].get<std::string>().find("no such table"),
            std::string::npos);
}

// Requests over --slow_request_ms are logged, as JSON with --log_format.
TEST_F(HttpTest, SlowRequestsAreLoggedWithTheirMethodAndTime) {
  http_.reset();
  ASSERT_TRUE(
      server_.Restart([](ServerOptions& o) { o.slow_request_ms = 1; }).ok());
  StartHttp({});
  ASSERT_TRUE(obs::SetLog("info", "json").ok());
  testing::internal::CaptureStderr();
  // A read that counts 300,000 rows takes well over a millisecond (an
  // fsync may not: 84 us on a fast disk).
  httplib::Result r =
      Post("/db/query",
           "[\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
           "LIMIT 300000) SELECT count(*) FROM c\"]");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  // httplib logs a request after its answer went: wait until it is
  // counted (it is logged first).
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server_.node().request_metrics().Read().count(
             {"http", "POST /db/query", "200"}) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(obs::SetLog("info", "text").ok());
  EXPECT_NE(log.find("\"event\":\"slow_request\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"method\":\"POST /db/query\",\"code\":\"200\""),
            std::string::npos)
      << log;
}

// gRPC's health service answers as /readyz does: SERVING while the node
// is ready, NOT_SERVING once it stopped.
TEST_F(HttpTest, GrpcHealthFollowsReadiness) {
  // grpc.health.v1.HealthCheckResponse: field 1, 1 SERVING, 2 NOT_SERVING.
  const std::string serving("\x08\x01", 2), not_serving("\x08\x02", 2);
  auto health = [this](const std::string& service) {
    std::string request;
    if (!service.empty()) {
      request = absl::StrCat(
          "\x0a", std::string(1, static_cast<char>(service.size())), service);
    }
    absl::StatusOr<std::string> r =
        net::UnaryBytes(server_.endpoint(), "/grpc.health.v1.Health/Check",
                        request, 2000, net::Tls{});
    return r.ok() ? *r : std::string(r.status().message());
  };
  // The watcher looks every 500 ms: ask until it has (at most 5 s).
  auto wait_for = [&](const std::string& want) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (health("") == want && health("raftsql.v1.DatabaseService") == want) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(wait_for(serving)) << health("");
  server_.node().Shutdown();
  EXPECT_TRUE(wait_for(not_serving)) << health("");
}

// Over TLS: the node's certificate, and the same credentials as gRPC.
class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = server_.dir() + "/certs";
    ASSERT_TRUE(tools::EnsureLocalClusterCerts(certs_, 1).ok());
    absl::StatusOr<net::Tls> tls = net::LoadTlsDir(certs_, "node-1");
    ASSERT_TRUE(tls.ok());
    ASSERT_TRUE(server_.Start([&tls](ServerOptions& o) { o.tls = *tls; }).ok());
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<HttpFrontend>> http =
        HttpFrontend::Start(&server_.node(), o);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);
  }

  // A client that checks the node's certificate against the CA, showing
  // the client certificate `cert` if given.
  std::unique_ptr<httplib::SSLClient> Client(const std::string& cert = "") {
    std::unique_ptr<httplib::SSLClient> c;
    if (cert.empty()) {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", http_->port());
    } else {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", http_->port(),
                                               certs_ + "/" + cert + ".crt",
                                               certs_ + "/" + cert + ".key");
    }
    c->set_ca_cert_path((certs_ + "/ca.crt").c_str());
    c->enable_server_certificate_verification(true);
    return c;
  }

  OneNodeServer server_;
  std::string certs_;
  std::unique_ptr<HttpFrontend> http_;
};

TEST_F(HttpsTest, CallersProveWhoTheyAreAndNeedTheirPermissions) {
  auto root = Client("client-root");
  httplib::Result r = root->Post("/db/execute", R"js(["CREATE TABLE t (v)"])js",
                                 "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200) << r->body;

  auto anonymous = Client();
  r = anonymous->Post("/db/execute", R"js(["INSERT INTO t VALUES (1)"])js",
                      "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Basic realm=\"raftsql\"");

  ASSERT_TRUE(
      server_.node().PutUser("reader", "a long password", sm::kPermQuery).ok());
  auto reader = Client();
  reader->set_basic_auth("reader", "a long password");
  r = reader->Get("/db/query?q=SELECT%20count(*)%20FROM%20t");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = reader->Post("/db/execute", R"js(["INSERT INTO t VALUES (1)"])js",
                   "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(Body(r)["error"].get<std::string>().find("execute"),
            std::string::npos);
  reader->set_basic_auth("reader", "a wrong password");
  r = reader->Get("/db/query?q=SELECT%201");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);

  // Health needs no credentials (probes rarely carry them).
  r = anonymous->Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = root->Get("/db/query?q=SELECT%20count(*)%20FROM%20t");
  ASSERT_TRUE(r);
  EXPECT_EQ(Body(r)["results"][0]["values"], json::parse("[[0]]"));
}

}  // namespace
}  // namespace raftsql::server
