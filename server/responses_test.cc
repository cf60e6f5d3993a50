// What DatabaseService answers, through real gRPC on a one-node server:
// values of every kind travel intact (TEXT that is not valid UTF-8
// included), reads say their columns' declared types, and the statement
// model is the same for Execute and Query.
#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"
#include "net/client.h"
#include "net/raftsql.grpc.pb.h"
#include "server/one_node_server.h"

namespace raftsql::server {
namespace {

class ResponsesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    stub_ = v1::DatabaseService::NewStub(grpc::CreateChannel(
        server_.endpoint(), grpc::InsecureChannelCredentials()));
  }
  grpc::Status Execute(const std::string& sql, v1::ExecuteResponse* out,
                       const std::vector<v1::Value>& params = {}) {
    grpc::ClientContext ctx;
    v1::ExecuteRequest r;
    v1::Statement* s = r.add_statements();
    s->set_sql(sql);
    for (const v1::Value& v : params) *s->add_positional() = v;
    return stub_->Execute(&ctx, r, out);
  }
  grpc::Status Query(const std::string& sql, v1::QueryResponse* out) {
    grpc::ClientContext ctx;
    v1::QueryRequest q;
    q.mutable_statement()->set_sql(sql);
    q.set_consistency(v1::LINEARIZABLE);
    return stub_->Query(&ctx, q, out);
  }
  void ExecuteOk(const std::string& sql,
                 const std::vector<v1::Value>& params = {}) {
    v1::ExecuteResponse r;
    const grpc::Status s = Execute(sql, &r, params);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.error_message();
    for (const v1::StatementResult& st : r.results()) {
      EXPECT_EQ(st.code(), 0) << sql << ": " << st.error();
    }
  }

  OneNodeServer server_;
  std::unique_ptr<v1::DatabaseService::Stub> stub_;
};

TEST_F(ResponsesTest, TextThatIsNotUtf8TravelsIntactBothWays) {
  ExecuteOk("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  ExecuteOk("INSERT INTO t VALUES (1, CAST(x'ff00fe' AS TEXT))");
  v1::Value sent;
  sent.set_text_bytes(std::string("caf\xe9", 4));  // Latin-1, not UTF-8.
  ExecuteOk("INSERT INTO t VALUES (2, ?)", {sent});
  ExecuteOk("INSERT INTO t VALUES (3, 'ok \xc3\xa9')");
  v1::QueryResponse r;
  ASSERT_TRUE(Query("SELECT v, typeof(v) FROM t ORDER BY id", &r).ok());
  ASSERT_EQ(r.rows_size(), 3);
  // A strict decoder (the generated one) reads the whole response.
  v1::QueryResponse reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(r.SerializeAsString()));
  EXPECT_EQ(r.rows(0).values(0).text_bytes(), std::string("\xff\x00\xfe", 3));
  EXPECT_EQ(r.rows(0).values(1).text(), "text");
  EXPECT_EQ(r.rows(1).values(0).text_bytes(), std::string("caf\xe9", 4));
  EXPECT_EQ(r.rows(2).values(0).text(), "ok \xc3\xa9");
}

TEST_F(ResponsesTest, ReadsSayTheirColumnsDeclaredTypesEvenWithoutRows) {
  ExecuteOk("CREATE TABLE d(n INTEGER, s TEXT, x)");
  v1::QueryResponse r;
  ASSERT_TRUE(Query("SELECT n, s, x, n + 1 AS e FROM d", &r).ok());
  EXPECT_EQ(r.rows_size(), 0);
  ASSERT_EQ(r.declared_types_size(), 4);
  EXPECT_EQ(r.declared_types(0), "INTEGER");
  EXPECT_EQ(r.declared_types(1), "TEXT");
  EXPECT_EQ(r.declared_types(2), "");
  EXPECT_EQ(r.declared_types(3), "");
}

TEST_F(ResponsesTest, OneStatementModelForExecuteAndQuery) {
  ExecuteOk("CREATE TABLE n(x); -- comments and semicolons are fine");
  v1::QueryResponse q;
  EXPECT_EQ(Query("SELECT 1; DELETE FROM n", &q).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ExecuteResponse e;
  EXPECT_EQ(Execute("INSERT INTO n VALUES (1); DELETE FROM n", &e).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const grpc::Status read = Execute("SELECT * FROM n", &e);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(read.error_message().find("Query"), std::string::npos);
  EXPECT_EQ(Execute("INSERT INTO n VALUES (?)", &e).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ResponsesTest, ReturningRowsComeBackInTheExecuteAnswer) {
  ExecuteOk("CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)");
  v1::ExecuteResponse e;
  ASSERT_TRUE(
      Execute("INSERT INTO r(v) VALUES ('x'), ('y') RETURNING id, v", &e).ok());
  ASSERT_EQ(e.results_size(), 1);
  const v1::StatementResult& s = e.results(0);
  EXPECT_EQ(s.code(), 0) << s.error();
  ASSERT_EQ(s.columns_size(), 2);
  EXPECT_EQ(s.columns(1), "v");
  ASSERT_EQ(s.rows_size(), 2);
  EXPECT_EQ(s.rows(1).values(0).integer(), 2);
  EXPECT_EQ(s.rows(1).values(1).text(), "y");
  EXPECT_FALSE(s.rows_truncated());
}

TEST_F(ResponsesTest, QueryStreamDeliversAResultOfAnySizeInPages) {
  // 12 MiB: three times a client's default receive limit for one message.
  ExecuteOk("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)");
  for (int i = 0; i < 12; ++i) {
    ExecuteOk(
        "INSERT INTO big(v) SELECT zeroblob(1024) FROM (WITH RECURSIVE "
        "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1024) "
        "SELECT x FROM c)");
  }
  grpc::ClientContext ctx;
  v1::QueryRequest q;
  q.mutable_statement()->set_sql("SELECT id, v FROM big ORDER BY id");
  q.set_consistency(v1::LINEARIZABLE);
  auto reader = stub_->QueryStream(&ctx, q);
  v1::QueryResponse page;
  int pages = 0;
  int64_t rows = 0, last_id = 0;
  while (reader->Read(&page)) {
    EXPECT_EQ(page.columns_size(), pages == 0 ? 2 : 0);
    EXPECT_LE(page.ByteSizeLong(), (size_t{1} << 20) + (64 << 10));
    for (const v1::Row& row : page.rows()) {
      EXPECT_EQ(row.values(0).integer(), last_id + 1);
      last_id = row.values(0).integer();
    }
    rows += page.rows_size();
    ++pages;
  }
  const grpc::Status end = reader->Finish();
  ASSERT_TRUE(end.ok()) << end.error_message();
  EXPECT_EQ(rows, 12 * 1024);
  EXPECT_GE(pages, 12);
  // An empty result is one page with the columns.
  grpc::ClientContext ctx2;
  q.mutable_statement()->set_sql("SELECT id FROM big WHERE 0");
  auto empty = stub_->QueryStream(&ctx2, q);
  ASSERT_TRUE(empty->Read(&page));
  EXPECT_EQ(page.columns_size(), 1);
  EXPECT_EQ(page.rows_size(), 0);
  EXPECT_FALSE(empty->Read(&page));
  EXPECT_TRUE(empty->Finish().ok());
  // A refused read ends the stream with its error.
  grpc::ClientContext ctx3;
  q.mutable_statement()->set_sql("DELETE FROM big");
  auto refused = stub_->QueryStream(&ctx3, q);
  EXPECT_FALSE(refused->Read(&page));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ResponsesTest, TheClientLibraryReadsAStreamPageByPage) {
  ExecuteOk("CREATE TABLE s(v BLOB)");
  ExecuteOk(
      "INSERT INTO s SELECT zeroblob(4096) FROM (WITH RECURSIVE "
      "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
      "SELECT x FROM c)");
  net::Client client({server_.endpoint()});
  v1::QueryRequest q;
  q.mutable_statement()->set_sql("SELECT v FROM s");
  int pages = 0;
  int64_t rows = 0;
  const absl::Status all = client.QueryStream(q, [&](const auto& page) {
    ++pages;
    rows += page.rows_size();
    return true;
  });
  EXPECT_TRUE(all.ok()) << all;
  EXPECT_EQ(rows, 1000);
  EXPECT_GE(pages, 4);  // 4 MB in 1 MiB pages.
  const absl::Status one =
      client.QueryStream(q, [](const auto&) { return false; });
  EXPECT_TRUE(absl::IsCancelled(one)) << one;
}

TEST_F(ResponsesTest, AClientThatLeavesAQueryStreamEndsTheRead) {
  ExecuteOk("CREATE TABLE wide(v BLOB)");
  for (int i = 0; i < 8; ++i) {
    ExecuteOk(
        "INSERT INTO wide SELECT zeroblob(1024) FROM (WITH RECURSIVE "
        "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1024) "
        "SELECT x FROM c)");
  }
  for (int i = 0; i < 8; ++i) {  // More than the node's read connections.
    grpc::ClientContext ctx;
    v1::QueryRequest q;
    q.mutable_statement()->set_sql("SELECT v FROM wide");
    auto reader = stub_->QueryStream(&ctx, q);
    v1::QueryResponse page;
    ASSERT_TRUE(reader->Read(&page));
    ctx.TryCancel();  // Gone after one page: the read must let go.
    while (reader->Read(&page)) {
    }
    reader->Finish();
  }
  // The connections came back: reads are served.
  v1::QueryResponse r;
  EXPECT_TRUE(Query("SELECT count(*) FROM wide", &r).ok());
}

}  // namespace
}  // namespace raftsql::server
