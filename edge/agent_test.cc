#include "edge/agent.h"

#include <unistd.h>

#include <filesystem>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "server/one_node_server.h"

namespace raftsql::edge {
namespace {

constexpr char kToken[] = "token-of-pump-1";

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Csv(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) {
    out += "temp," + std::to_string(i) + ",C," + std::to_string(i) + "\n";
  }
  return out;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_
                    .Start([](server::ServerOptions& o) {
                      o.edge.command_lock_ms = 500;
                      o.edge.sweep_ms = 50;
                    })
                    .ok());
    ASSERT_TRUE(server_.node().PutUser("pump-1", kToken, sm::kPermDevice).ok());
    char dir[] = "/tmp/raftsql-agent-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  AgentOptions Options() {
    AgentOptions o;
    o.hubs = {server_.endpoint()};
    o.device = "pump-1";
    o.token = kToken;
    o.core.batch_max = 50;
    o.core.batch_ms = 10;
    o.core.sample_ms = 5;
    return o;
  }
  std::unique_ptr<EdgeStore> Store() {
    StoreOptions so;
    so.path = dir_ + "/edge.db";
    auto s = EdgeStore::Open(so);
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
  sm::Value Query(const std::string& sql) { return server_.QueryValue(sql); }
  absl::Status Execute(sm::Command c) {
    return server_.ExecuteOk(std::move(c));
  }
  bool Eventually(const std::string& sql, int64_t want) {
    return server_.WaitFor(sql, want);
  }

  server::OneNodeServer server_;
  std::string dir_;
};

TEST_F(AgentTest, EveryReadingOfAFiniteSourceIsStoredOnce) {
  auto store = Store();
  std::istringstream in(Csv(0, 1234));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<CsvSource>(&in, 100));
  SimulatedActuator actuator;
  AgentOptions o = Options();
  o.stop_when_drained = true;
  Agent agent(o, store.get(), std::move(sources), &actuator);
  agent.Run();  // Returns once all is acknowledged.
  EXPECT_EQ(store->backlog(), 0u);
  EXPECT_EQ(agent.stats().acked, 1234u);
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 1234);
  EXPECT_EQ(Query("SELECT count(DISTINCT seq) FROM edge_readings").integer,
            1234);
  EXPECT_EQ(Query("SELECT sum(value) FROM edge_readings").real,
            1233.0 * 1234 / 2);
}

TEST_F(AgentTest, ARestartedAgentResumesWithoutLossOrDuplicates) {
  SimulatedActuator actuator;
  {
    auto store = Store();
    std::istringstream in(Csv(0, 300));
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<CsvSource>(&in, 100));
    AgentOptions o = Options();
    o.stop_when_drained = true;
    Agent agent(o, store.get(), std::move(sources), &actuator);
    agent.Run();
    // More readings arrive while it is down.
    for (int i = 300; i < 400; ++i) {
      Reading r{"temp", static_cast<double>(i), "C", i, 0};
      ASSERT_TRUE(store->Append(r, WallMs()).ok());
    }
  }
  auto store = Store();
  EXPECT_EQ(store->backlog(), 100u);
  std::istringstream in(Csv(400, 500));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<CsvSource>(&in, 100));
  AgentOptions o = Options();
  o.stop_when_drained = true;
  Agent agent(o, store.get(), std::move(sources), &actuator);
  agent.Run();
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 500);
  EXPECT_EQ(Query("SELECT max(seq) FROM edge_readings").integer, 500);
}

TEST_F(AgentTest, CommandsRunOnceAndTheTwinIsApplied) {
  auto store = Store();
  SimulatedActuator actuator;
  std::vector<std::unique_ptr<Source>> sources;
  Agent agent(Options(), store.get(), std::move(sources), &actuator);
  std::thread runner([&] { agent.Run(); });
  // The tables exist once a leader's edge service made them.
  EXPECT_TRUE(Eventually(
      "SELECT count(*) FROM sqlite_schema WHERE name = 'edge_commands'", 1));
  HubCommand c;
  c.id = "c1";
  c.device = "pump-1";
  c.name = "set";
  c.params_json = R"({"speed": 900})";
  c.expires_ms = WallMs() + 60'000;
  ASSERT_TRUE(Execute(IssueCommand(c, WallMs())).ok());
  c.id = "c2";
  c.name = "explode";
  ASSERT_TRUE(Execute(IssueCommand(c, WallMs())).ok());
  ASSERT_TRUE(
      Execute(SetDesiredCommand("pump-1", R"({"sample_ms": 250})", WallMs()))
          .ok());
  EXPECT_TRUE(
      Eventually("SELECT count(*) FROM edge_commands WHERE status IN ('done', "
                 "'rejected')",
                 2));
  EXPECT_TRUE(Eventually("SELECT count(*) FROM edge_twin_delta", 0));
  agent.Stop();
  runner.join();
  EXPECT_EQ(Query("SELECT status FROM edge_commands WHERE id = 'c1'").bytes,
            "done");
  EXPECT_EQ(Query("SELECT status FROM edge_commands WHERE id = 'c2'").bytes,
            "rejected");
  EXPECT_EQ(agent.sample_ms(), 250);
  EXPECT_EQ(SimulatedActuator::Get(store->db(), "speed"), "900");
  EXPECT_EQ(agent.stats().commands_run, 2u);
}

TEST_F(AgentTest, AWrongTokenNeverConnectsAndKeepsTheReadings) {
  auto store = Store();
  std::istringstream in(Csv(0, 10));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<CsvSource>(&in, 100));
  SimulatedActuator actuator;
  AgentOptions o = Options();
  o.token = "not-the-token";
  o.core.backoff_min_ms = 5;
  o.core.backoff_max_ms = 20;
  Agent agent(o, store.get(), std::move(sources), &actuator);
  std::thread runner([&] { agent.Run(); });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (agent.stats().session_failures < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  agent.Stop();
  runner.join();
  EXPECT_GE(agent.stats().session_failures, 3u);
  EXPECT_EQ(agent.stats().sessions, 0u);
  EXPECT_EQ(store->backlog(), 10u);
}

}  // namespace
}  // namespace raftsql::edge
