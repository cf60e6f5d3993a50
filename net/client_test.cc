#include "net/client.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {
namespace {

// A node that answers every Execute with one status.
class ScriptedNode final : public v1::DatabaseService::Service {
 public:
  explicit ScriptedNode(grpc::Status answer) : answer_(std::move(answer)) {}
  grpc::Status Execute(grpc::ServerContext*, const v1::ExecuteRequest*,
                       v1::ExecuteResponse*) override {
    ++calls;
    return answer_;
  }
  int calls = 0;

 private:
  const grpc::Status answer_;
};

struct Running {
  explicit Running(grpc::Status answer) : node(std::move(answer)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&node);
    server = builder.BuildAndStart();
  }
  ~Running() { server->Shutdown(); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }

  ScriptedNode node;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

v1::ExecuteRequest Insert() {
  v1::ExecuteRequest r;
  r.add_statements()->set_sql("INSERT INTO t VALUES (1)");
  return r;
}

TEST(ClientFailover, ARefusalAfterAnUnknownOutcomeIsStillUnknown) {
  // The first node took the write and stopped; the next one refuses
  // (UNAVAILABLE: nothing written there). The write may have applied on
  // the first: the call's outcome is unknown, not "nothing written".
  Running stopped(grpc::Status(grpc::StatusCode::UNKNOWN, "stopped"));
  Running refusing(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  ClientOptions o;
  o.attempts = 2;
  Client client({stopped.endpoint(), refusing.endpoint()}, o);
  const absl::Status s = client.Execute(Insert()).status();
  EXPECT_EQ(stopped.node.calls, 1);
  EXPECT_EQ(refusing.node.calls, 1);
  EXPECT_TRUE(absl::IsUnknown(s)) << s;
}

TEST(ClientFailover, ARefusalAloneSaysNothingWasWritten) {
  Running a(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  Running b(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  ClientOptions o;
  o.attempts = 2;
  Client client({a.endpoint(), b.endpoint()}, o);
  EXPECT_TRUE(absl::IsUnavailable(client.Execute(Insert()).status()));
}

}  // namespace
}  // namespace raftsql::net
