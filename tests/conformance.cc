#include "tests/conformance.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tools/process.h"

namespace raftsql::conformance {

std::string Show(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return absl::StrCat("i:", v.integer());
    case v1::Value::kReal:
      return absl::StrCat("r:", v.real());
    case v1::Value::kText:
      return "t:" + v.text();
    case v1::Value::kTextBytes:
      return "t:" + v.text_bytes();
    case v1::Value::kBlob:
      return "b:" + v.blob();
    default:
      return "null";
  }
}

std::string Show(sqlite3_stmt* stmt, int c) {
  switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_INTEGER:
      return absl::StrCat("i:", sqlite3_column_int64(stmt, c));
    case SQLITE_FLOAT:
      return absl::StrCat("r:", sqlite3_column_double(stmt, c));
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
      const std::string bytes(p != nullptr ? p : "",
                              sqlite3_column_bytes(stmt, c));
      return (sqlite3_column_type(stmt, c) == SQLITE_TEXT ? "t:" : "b:") +
             bytes;
    }
    default:
      return "null";
  }
}

std::vector<std::string> Lines(
    const google::protobuf::RepeatedPtrField<v1::Row>& rows) {
  std::vector<std::string> lines;
  for (const v1::Row& row : rows) {
    std::string line;
    for (const v1::Value& v : row.values())
      absl::StrAppend(&line, Show(v), "|");
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> Reference(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sql << ": " << sqlite3_errmsg(db);
  std::vector<std::string> rows;
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      absl::StrAppend(&row, Show(stmt, c), "|");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(stmt);
  return rows;
}

void Cluster::SetUp() {
  char dir[] = "/tmp/raftsql-conformance-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  dir_ = dir;
  tools::LocalClusterOptions o;
  o.nodes = GetParam();
  o.server_binary = tools::FindBinary("", "server/raftsql_server");
  ASSERT_FALSE(o.server_binary.empty());
  o.dir = dir_;
  cluster_ = std::make_unique<tools::LocalCluster>(o);
  ASSERT_TRUE(cluster_->Start().ok());
  ASSERT_TRUE(cluster_->WaitForLeader(20'000).ok()) << "no leader within 20 s";
  ASSERT_EQ(sqlite3_open(":memory:", &reference_), SQLITE_OK);
}

void Cluster::TearDown() {
  sqlite3_close(reference_);
  cluster_.reset();  // Stops every node by PID.
  std::filesystem::remove_all(dir_);
}

net::Client Cluster::Reader() { return Node(GetParam() == 1 ? 1 : ReadNode()); }

int Cluster::ReadNode() {
  for (int node = 1; node <= GetParam(); ++node) {
    auto s = cluster_->client().Status(cluster_->Endpoint(node));
    if (s.ok() && s->role() == "Follower") return node;
  }
  return 1;
}

net::Client Cluster::Node(int id) {
  return net::Client({cluster_->Endpoint(id)}, cluster_->ClientOptionsFor());
}

v1::ExecuteResponse Cluster::Write(const std::string& sql) {
  v1::ExecuteRequest e;
  e.add_statements()->set_sql(sql);
  absl::StatusOr<v1::ExecuteResponse> r = cluster_->client().Execute(e);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
  if (!r.ok()) return {};
  EXPECT_EQ(r->results(0).code(), 0) << sql << ": " << r->results(0).error();
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(reference_, sql.c_str(), nullptr, nullptr, &err),
            SQLITE_OK)
      << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  return *r;
}

v1::QueryResponse Cluster::Read(net::Client& reader, const std::string& sql,
                                v1::Consistency consistency) {
  v1::QueryRequest q;
  q.mutable_statement()->set_sql(sql);
  q.set_consistency(consistency);
  absl::StatusOr<v1::QueryResponse> r = reader.Query(q);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
  return r.ok() ? *r : v1::QueryResponse();
}

uint64_t Cluster::LastIndex() {
  // The leader's: a follower may not have the new leader's first entry yet
  // (it came in after the election, before anything was written).
  absl::StatusOr<int> leader = cluster_->WaitForLeader(20'000);
  EXPECT_TRUE(leader.ok()) << leader.status();
  auto s =
      cluster_->client().Status(cluster_->Endpoint(leader.ok() ? *leader : 1));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? s->last_index() : 0;
}

std::string NodesName(const ::testing::TestParamInfo<int>& info) {
  return absl::StrCat(info.param, "_nodes");
}

}  // namespace raftsql::conformance
