// The DecisionMaker on a one-node server: once the tables exist, a rule
// fires on committed rows and its command is queued once, and a restarted
// node (a new leader) carries on from the replicated progress without
// issuing it again.
#include "server/decision_maker.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "ai/llama_testing.h"
#include "ai/model_registry.h"
#include "ai/rules.h"
#include "gtest/gtest.h"
#include "net/client.h"
#include "server/one_node_server.h"

namespace raftsql::server {
namespace {

class DecisionMakerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        server_.Start([](ServerOptions& o) { o.decision_interval_ms = 10; })
            .ok());
  }
  net::Client Client() { return net::Client({server_.endpoint()}); }
  absl::Status Write(const std::string& sql) {
    v1::ExecuteRequest e;
    e.add_statements()->set_sql(sql);
    absl::StatusOr<v1::ExecuteResponse> r = Client().Execute(e);
    if (!r.ok()) return r.status();
    if (r->results(0).code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(r->results(0).code()),
                          r->results(0).error());
    }
    return absl::OkStatus();
  }
  // The first value of `sql`'s first row ("" if none or failed).
  std::string Value(const std::string& sql) {
    v1::QueryRequest q;
    q.mutable_statement()->set_sql(sql);
    absl::StatusOr<v1::QueryResponse> r = Client().Query(q);
    if (!r.ok() || r->rows_size() == 0) return "";
    const v1::Value& v = r->rows(0).values(0);
    return v.kind_case() == v1::Value::kInteger ? std::to_string(v.integer())
                                                : v.text();
  }
  // Polls (bounded: 60 s, for a loaded machine) until `sql` answers
  // `want`; else says what it last answered and where the DecisionMaker
  // stands.
  ::testing::AssertionResult Until(const std::string& sql,
                                   const std::string& want) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string last;
    while (std::chrono::steady_clock::now() < until) {
      if ((last = Value(sql)) == want) return ::testing::AssertionSuccess();
      std::this_thread::yield();
    }
    ::testing::AssertionResult failed = ::testing::AssertionFailure();
    failed << sql << " answered \"" << last << "\", not \"" << want << "\"";
    absl::StatusOr<v1::StatusResponse> st = Client().Status(server_.endpoint());
    if (st.ok()) {
      failed << "; decisions: " << st->decision_evaluations()
             << " evaluations, evaluated through "
             << st->decisions_evaluated_index() << ", applied "
             << st->applied_index() << ", leader " << st->leader() << " ("
             << st->role() << ")";
    }
    return failed;
  }

  OneNodeServer server_;
};

TEST_F(DecisionMakerTest, ARuleFiresOnceOnCommittedRowsAcrossARestart) {
  // The decision tables, as the shell's first .rule add makes them.
  v1::ExecuteRequest schema;
  schema.set_transaction(true);
  for (const sm::Statement& s : ai::SchemaCommand().statements) {
    schema.add_statements()->set_sql(s.sql);
  }
  ASSERT_TRUE(Client().Execute(schema).ok());
  ASSERT_TRUE(Write("CREATE TABLE temps(device TEXT, v REAL)").ok());
  ASSERT_TRUE(
      Write("INSERT INTO ai_allow VALUES ('cool', '*', '', NULL, NULL, 0)")
          .ok());
  ASSERT_TRUE(
      Write("INSERT INTO ai_rules(name, watch, condition, command, params) "
            "VALUES ('hot', 'temps', 'SELECT device, max(v) AS peak FROM "
            "temps GROUP BY device HAVING max(v) > 50', 'cool', "
            "'{\"peak\": \"$peak\"}')")
          .ok());
  ASSERT_TRUE(Write("INSERT INTO temps VALUES ('pump-1', 70)").ok());
  ASSERT_TRUE(
      Until("SELECT count(*) FROM edge_commands WHERE device = "
            "'pump-1' AND name = 'cool'",
            "1"));
  EXPECT_EQ(Value("SELECT verdict FROM ai_audit"), "issued");
  // Status shows the evaluation and the change log it follows.
  absl::StatusOr<v1::StatusResponse> st = Client().Status(server_.endpoint());
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->decision_evaluations(), 0u);
  EXPECT_GT(st->decisions_evaluated_index(), 0u);
  EXPECT_LE(st->decisions_evaluated_index(), st->applied_index());
  EXPECT_EQ(st->change_log_first(), 1u);
  EXPECT_GT(st->change_log_bytes(), 0u);
  EXPECT_EQ(Value("SELECT params FROM edge_commands"), "{\"peak\": 70}");
  // More changes: the rule's cooldown holds it (blocked, audited).
  ASSERT_TRUE(Write("INSERT INTO temps VALUES ('pump-1', 80)").ok());
  ASSERT_TRUE(
      Until("SELECT count(*) FROM ai_audit WHERE verdict = 'blocked'", "1"));
  // A new leader (the node restarted) starts after the committed progress.
  ASSERT_TRUE(
      server_.Restart([](ServerOptions& o) { o.decision_interval_ms = 10; })
          .ok());
  ASSERT_TRUE(Write("INSERT INTO temps VALUES ('pump-2', 90)").ok());
  ASSERT_TRUE(Until("SELECT count(*) FROM edge_commands", "2"));
  EXPECT_EQ(Value("SELECT count(*) FROM edge_commands WHERE device = "
                  "'pump-1'"),
            "1");
  EXPECT_EQ(Value("SELECT count(*) FROM ai_audit WHERE verdict = 'issued'"),
            "2");
}

TEST_F(DecisionMakerTest, AModelRuleUsesTheFileWhoseHashTheClusterAgreedOn) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/models";
  std::system(("mkdir -p " + dir).c_str());
  const std::string model = ai::RandomLlamaWithVocabulary(270);
  std::ofstream(dir + "/m1.gguf", std::ios::binary) << model;
  ASSERT_TRUE(server_
                  .Restart([&](ServerOptions& o) {
                    o.decision_interval_ms = 10;
                    o.model_dir = dir;
                  })
                  .ok());
  v1::ExecuteRequest schema;
  schema.set_transaction(true);
  for (const sm::Statement& s : ai::SchemaCommand().statements) {
    schema.add_statements()->set_sql(s.sql);
  }
  ASSERT_TRUE(Client().Execute(schema).ok());
  // Staged with another file's hash first: refused, and audited so.
  ASSERT_TRUE(Write("INSERT INTO ai_models VALUES ('m1', '" +
                    ai::Sha256Hex("other") + "', 'active', 1)")
                  .ok());
  ASSERT_TRUE(
      Write("CREATE TABLE situ(device TEXT, sensor TEXT, value REAL, mean "
            "REAL, z REAL, rate REAL, stuck INTEGER, gap INTEGER)")
          .ok());
  ASSERT_TRUE(
      Write("INSERT INTO ai_allow VALUES ('cool', '*', '', NULL, NULL, 0)")
          .ok());
  ASSERT_TRUE(
      Write("INSERT INTO ai_rules(name, watch, condition, command) VALUES "
            "('m', 'situ', 'SELECT * FROM situ', '@model')")
          .ok());
  ASSERT_TRUE(Write("INSERT INTO situ VALUES ('pump-1', 'temperature', 93, "
                    "70, 2.9, 1.5, 0, 3)")
                  .ok());
  ASSERT_TRUE(Until(
      "SELECT count(*) FROM ai_audit WHERE guard LIKE 'model: model m1: %' "
      "AND guard LIKE '%not the " +
          ai::Sha256Hex("other") + "%'",
      "1"));
  // Status says why the active model is not used (published after the
  // evaluation's turn: polled, bounded).
  auto status_until = [&](auto done) {
    absl::StatusOr<v1::StatusResponse> st;
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      st = Client().Status(server_.endpoint());
    } while (st.ok() && !done(*st) && std::chrono::steady_clock::now() < until);
    return st;
  };
  absl::StatusOr<v1::StatusResponse> st =
      status_until([](const v1::StatusResponse& s) {
        return !s.decision_model_error().empty();
      });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->decision_model(), "");
  EXPECT_NE(
      st->decision_model_error().find("not the " + ai::Sha256Hex("other")),
      std::string::npos)
      << st->decision_model_error();
  // The right hash: the model decides (cool or none), named in the audit.
  ASSERT_TRUE(
      Write("UPDATE ai_models SET sha256 = '" + ai::Sha256Hex(model) + "'")
          .ok());
  ASSERT_TRUE(Write("INSERT INTO situ VALUES ('pump-2', 'flow', 3, 30, -6, "
                    "-2, 0, 3)")
                  .ok());
  ASSERT_TRUE(
      Until("SELECT count(*) > 0 FROM ai_audit WHERE json_extract(inputs, "
            "'$.model') = 'm1@" +
                ai::Sha256Hex(model).substr(0, 12) +
                "' AND verdict IN ('issued', "
                "'none')",
            "1"));
  // ... and Status names it.
  st = status_until(
      [](const v1::StatusResponse& s) { return !s.decision_model().empty(); });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->decision_model(), "m1@" + ai::Sha256Hex(model).substr(0, 12));
  EXPECT_EQ(st->decision_model_error(), "");
}

}  // namespace
}  // namespace raftsql::server
