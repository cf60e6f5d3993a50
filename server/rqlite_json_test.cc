#include "server/rqlite_json.h"

#include <gtest/gtest.h>

#include <string>

namespace raftsql::server::rqlite {
namespace {

using nlohmann::json;

TEST(RqliteJson, StatementsAreTextsOrArraysWithParameters) {
  absl::StatusOr<std::vector<sm::Statement>> s = ParseStatements(
      R"js([
        "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)",
        ["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20],
        ["INSERT INTO foo(name, age) VALUES(:name, :age)",
         {"name": "declan", "age": 2.5}],
        ["SELECT ?, ?, ?, ?", true, null, [0, 255, 7], 9223372036854775807]
      ])js",
      true);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0].sql,
            "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_TRUE((*s)[0].positional.empty());
  EXPECT_EQ((*s)[1].positional,
            (std::vector<sm::Value>{sm::Value::Text("fiona"),
                                    sm::Value::Integer(20)}));
  ASSERT_EQ((*s)[2].named.size(), 2u);
  // Named values keep no order of their own: look each up.
  for (const auto& [name, v] : (*s)[2].named) {
    if (name == "name") {
      EXPECT_EQ(v, sm::Value::Text("declan"));
    } else {
      EXPECT_EQ(v, sm::Value::Real(2.5));
    }
  }
  EXPECT_EQ(
      (*s)[3].positional,
      (std::vector<sm::Value>{sm::Value::Integer(1), sm::Value::Null(),
                              sm::Value::Blob(std::string("\x00\xff\x07", 3)),
                              sm::Value::Integer(9223372036854775807)}));
}

TEST(RqliteJson, NamedObjectsMayStandAnywhereAmongTheParameters) {
  absl::StatusOr<std::vector<sm::Statement>> s =
      ParseStatements(R"([["SELECT ?, :a, ?", 1, {"a": "x"}, 2]])", true);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(
      (*s)[0].positional,
      (std::vector<sm::Value>{sm::Value::Integer(1), sm::Value::Integer(2)}));
  ASSERT_EQ((*s)[0].named.size(), 1u);
  EXPECT_EQ((*s)[0].named[0].first, "a");
}

TEST(RqliteJson, AnIntegerAndARealStayApart) {
  absl::StatusOr<std::vector<sm::Statement>> s =
      ParseStatements(R"([["SELECT ?, ?, ?", 20, 20.0, 2e1]])", true);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].positional,
            (std::vector<sm::Value>{sm::Value::Integer(20), sm::Value::Real(20),
                                    sm::Value::Real(20)}));
}

TEST(RqliteJson, PlainTextIsOneStatement) {
  absl::StatusOr<std::vector<sm::Statement>> s =
      ParseStatements("INSERT INTO t VALUES (1)", false);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].sql, "INSERT INTO t VALUES (1)");
  EXPECT_EQ(ParseStatements("  \n", false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RqliteJson, MalformedBodiesAreRefusedSayingWhere) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (const Case& c : {
           Case{"[", "not valid JSON"},
           Case{R"({"sql": "SELECT 1"})", "JSON array"},
           Case{"[1]", "statement 1"},
           Case{R"(["SELECT 1", []])", "statement 2"},
           Case{R"([[1, 2]])", "statement 1"},
           Case{R"([["SELECT ?", [256]]])", "0-255"},
           Case{R"([["SELECT ?", [1.5]]])", "0-255"},
           Case{R"([["SELECT ?", 9223372036854775808]])", "beyond"},
           Case{R"([["SELECT :a", {"a": {"b": 1}}]])", "parameter a"},
       }) {
    absl::StatusOr<std::vector<sm::Statement>> s =
        ParseStatements(c.body, true);
    ASSERT_FALSE(s.ok()) << c.body;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.body << ": " << s.status();
  }
}

TEST(RqliteJson, DeepNestingIsAnErrorNotACrash) {
  const std::string deep =
      std::string(1 << 20, '[') + std::string(1 << 20, ']');
  absl::StatusOr<std::vector<sm::Statement>> s = ParseStatements(deep, true);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("deeper"), std::string::npos);
  // Brackets inside strings are text.
  s = ParseStatements(R"([["SELECT ?", "[[[[[[[[\"]]"]])", true);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].positional[0], sm::Value::Text("[[[[[[[[\"]]"));
}

TEST(RqliteJson, QueryResultsInBothForms) {
  sm::QueryResult r;
  r.columns = {"id", "name", "data", "score"};
  r.declared_types = {"INTEGER", "TEXT", "BLOB", ""};
  r.rows = {{sm::Value::Integer(1), sm::Value::Text("fiona"),
             sm::Value::Blob("hi"), sm::Value::Real(1.5)},
            {sm::Value::Integer(2), sm::Value::Null(), sm::Value::Null(),
             sm::Value::Null()}};
  EXPECT_EQ(QueryResultJson(r, false), json::parse(R"({
              "columns": ["id", "name", "data", "score"],
              "types": ["integer", "text", "blob", ""],
              "values": [[1, "fiona", "aGk=", 1.5], [2, null, null, null]]
            })"));
  EXPECT_EQ(QueryResultJson(r, true), json::parse(R"({
              "types": {"id": "integer", "name": "text", "data": "blob",
                        "score": ""},
              "rows": [{"id": 1, "name": "fiona", "data": "aGk=",
                        "score": 1.5},
                       {"id": 2, "name": null, "data": null, "score": null}]
            })"));
  // rqlite leaves "values" out when there are no rows.
  r.rows.clear();
  EXPECT_FALSE(QueryResultJson(r, false).contains("values"));
  EXPECT_EQ(QueryResultJson(r, true)["rows"], json::array());
}

TEST(RqliteJson, ExecuteResultsLeaveZerosOut) {
  sm::StatementResult created;
  EXPECT_EQ(ExecuteResultJson(created, false), json::object());
  sm::StatementResult inserted;
  inserted.last_insert_rowid = 7;
  inserted.rows_affected = 1;
  EXPECT_EQ(ExecuteResultJson(inserted, false),
            json::parse(R"({"last_insert_id": 7, "rows_affected": 1})"));
  sm::StatementResult failed;
  failed.status = absl::FailedPreconditionError("UNIQUE constraint failed");
  EXPECT_EQ(ExecuteResultJson(failed, false),
            json::parse(R"({"error": "UNIQUE constraint failed"})"));
  sm::StatementResult returning;
  returning.rows_affected = 1;
  returning.columns = {"id"};
  returning.rows = {{sm::Value::Integer(3)}};
  EXPECT_EQ(ExecuteResultJson(returning, false), json::parse(R"({
              "rows_affected": 1, "columns": ["id"], "types": [""],
              "values": [[3]]})"));
}

TEST(RqliteJson, TextThatIsNotUtf8IsReplacedNotRefused) {
  const json v = json::array({ValueJson(sm::Value::Text("a\xff"))});
  EXPECT_EQ(Dump(v, false), "[\"a\xef\xbf\xbd\"]");
}

TEST(RqliteJson, InfinitiesAreNull) {
  EXPECT_TRUE(ValueJson(sm::Value::Real(1.0 / 0.0)).is_null());
}

TEST(RqliteJson, PrettyIsIndentedByFour) {
  EXPECT_EQ(Dump(json{{"a", 1}}, true), "{\n    \"a\": 1\n}");
  EXPECT_EQ(Dump(json{{"a", 1}}, false), "{\"a\":1}");
}

TEST(RqliteJson, GoDurations) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(*ParseDuration("0"), nanoseconds(0));
  EXPECT_EQ(*ParseDuration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(*ParseDuration("1h10m"), std::chrono::minutes(70));
  EXPECT_EQ(*ParseDuration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(*ParseDuration("3us"), std::chrono::microseconds(3));
  for (const char* bad :
       {"", "s", "5", "5x", "-1s", "1.2.3s", "5mss", "99999999999h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(RqliteJson, HttpStatusesFollowTheGrpcCodes) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnknown), 500);
}

}  // namespace
}  // namespace raftsql::server::rqlite
