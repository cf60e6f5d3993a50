// Clients authenticate and have permissions: a one-node TLS server on
// loopback (real RocksDB, SQLite, gRPC), certificates from tools/certs.
#include "server/auth.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "net/client.h"
#include "net/execute_stream_client.h"
#include "net/grpc_transport.h"
#include "server/one_node_server.h"
#include "tools/certs.h"
#include "tools/process.h"

namespace raftsql::server {
namespace {

v1::ExecuteRequest Sql(const std::string& sql) {
  v1::ExecuteRequest r;
  r.add_statements()->set_sql(sql);
  return r;
}

v1::QueryRequest Read(const std::string& sql) {
  v1::QueryRequest q;
  q.mutable_statement()->set_sql(sql);
  return q;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = server_.dir() + "/certs";
    ASSERT_TRUE(tools::EnsureLocalClusterCerts(certs_, 1).ok());
    ASSERT_TRUE(tools::CreateClientCert(certs_, "bob").ok());
    absl::StatusOr<net::Tls> tls = net::LoadTlsDir(certs_, "node-1");
    ASSERT_TRUE(tls.ok());
    ASSERT_TRUE(server_.Start([&tls](ServerOptions& o) { o.tls = *tls; }).ok());
    endpoint_ = server_.endpoint();
    root_ = Client("client-root");
    ASSERT_TRUE(root_->Execute(Sql("CREATE TABLE t(v)")).ok());
  }

  // A client with the CA and, if `cert` is given, that client certificate;
  // `user`/`password` as Basic credentials.
  std::unique_ptr<net::Client> Client(const std::string& cert,
                                      const std::string& user = "",
                                      const std::string& password = "") {
    net::ClientOptions o;
    o.attempts = 1;
    o.tls = *net::LoadTlsDir(certs_, cert);
    o.user = user;
    o.password = password;
    return std::make_unique<net::Client>(std::vector<std::string>{endpoint_},
                                         o);
  }

  OneNodeServer server_;
  std::string certs_, endpoint_;
  std::unique_ptr<net::Client> root_;
};

TEST_F(AuthTest, AClientWithoutCredentialsIsUnauthenticated) {
  auto anonymous = Client("");
  EXPECT_TRUE(absl::IsUnauthenticated(
      anonymous->Execute(Sql("INSERT INTO t VALUES (1)")).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(anonymous->Query(Read("SELECT 1")).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(anonymous->Status(endpoint_).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(anonymous->RemoveNode(1).status()));
  // Nothing was written.
  auto q = root_->Query(Read("SELECT count(*) FROM t"));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->rows(0).values(0).integer(), 0);
}

// Execute and Query time themselves (no interceptor): every outcome is
// still counted, by method and code, before the client has its answer.
TEST_F(AuthTest, EveryCallIsCountedWithItsOutcome) {
  auto count = [this](const char* method, const char* code) -> uint64_t {
    const auto m = server_.node().request_metrics().Read();
    const auto it = m.find({"grpc", method, code});
    return it == m.end() ? 0 : it->second.count;
  };
  constexpr char kExecute[] = "/raftsql.v1.DatabaseService/Execute";
  constexpr char kQuery[] = "/raftsql.v1.DatabaseService/Query";
  constexpr char kStatus[] = "/raftsql.v1.DatabaseService/Status";
  const uint64_t executed = count(kExecute, "OK");  // SetUp's CREATE.
  ASSERT_TRUE(root_->Execute(Sql("INSERT INTO t VALUES (1)")).ok());
  ASSERT_TRUE(root_->Query(Read("SELECT count(*) FROM t")).ok());
  EXPECT_FALSE(root_->Query(Read("SELECT nope FROM t")).ok());
  EXPECT_FALSE(root_->Execute(Sql("")).ok());
  auto anonymous = Client("");
  EXPECT_FALSE(anonymous->Query(Read("SELECT 1")).ok());
  EXPECT_FALSE(anonymous->Execute(Sql("INSERT INTO t VALUES (2)")).ok());
  ASSERT_TRUE(root_->Status(endpoint_).ok());
  EXPECT_EQ(count(kExecute, "OK"), executed + 1);
  EXPECT_EQ(count(kQuery, "OK"), 1u);
  EXPECT_EQ(count(kQuery, "INVALID_ARGUMENT"), 1u);
  EXPECT_EQ(count(kExecute, "INVALID_ARGUMENT"), 1u);
  EXPECT_EQ(count(kQuery, "UNAUTHENTICATED"), 1u);
  EXPECT_EQ(count(kExecute, "UNAUTHENTICATED"), 1u);
  // The other methods are counted by the interceptor, as the status goes.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (count(kStatus, "OK") == 0 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_EQ(count(kStatus, "OK"), 1u);
}

TEST_F(AuthTest, AUserWithAPasswordHasItsPermissionsOnly) {
  ASSERT_TRUE(root_->PutUser("alice", "correct horse", {"query"}).ok());
  auto alice = Client("", "alice", "correct horse");
  EXPECT_TRUE(alice->Query(Read("SELECT count(*) FROM t")).ok());
  // The second call is answered from the verified-password memory: the
  // same outcome.
  EXPECT_TRUE(alice->Query(Read("SELECT 1")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      alice->Execute(Sql("INSERT INTO t VALUES (1)")).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      alice->SetSetting("write_vm_steps_max", 100000).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      alice->PutUser("mallory", "12345678", {"all"}).status()));
  auto wrong = Client("", "alice", "wrong horse");
  EXPECT_TRUE(absl::IsUnauthenticated(wrong->Query(Read("SELECT 1")).status()));
  auto nobody = Client("", "nobody", "correct horse");
  EXPECT_TRUE(
      absl::IsUnauthenticated(nobody->Query(Read("SELECT 1")).status()));
  // Only a hash is stored.
  std::optional<sm::User> stored = server_.node().FindUser("alice");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->password_hash.rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(stored->password_hash.find("correct horse"), std::string::npos);
  // Dropped, it is nobody.
  ASSERT_TRUE(root_->DropUser("alice").ok());
  EXPECT_TRUE(absl::IsUnauthenticated(alice->Query(Read("SELECT 1")).status()));
}

TEST_F(AuthTest, AStreamAuthenticatesByPasswordOrIsRefused) {
  ASSERT_TRUE(root_->PutUser("erin", "stream password", {"execute"}).ok());
  auto channel = net::MakeChannel(endpoint_, *net::LoadTlsDir(certs_, ""));
  auto stub = v1::DatabaseService::NewStub(channel);
  for (const bool with_password : {false, true}) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::Status> answer;
    net::ExecuteStreamClient stream(
        stub.get(),
        [&](uint64_t, absl::StatusOr<v1::ExecuteResponse> r) {
          std::lock_guard<std::mutex> l(mu);
          answer = r.status();
          cv.notify_all();
        },
        with_password ? net::BasicAuthorization("erin", "stream password")
                      : "");
    ASSERT_TRUE(stream.Send(1, Sql("INSERT INTO t VALUES (7)")) ||
                !with_password);
    const absl::Status end = stream.Close();
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, std::chrono::seconds(10),
                [&] { return answer.has_value(); });
    if (with_password) {
      ASSERT_TRUE(answer.has_value());
      EXPECT_TRUE(answer->ok()) << *answer;
    } else {
      EXPECT_TRUE(absl::IsUnauthenticated(end)) << end;
    }
  }
}

TEST_F(AuthTest, AChangedPasswordReplacesTheOld) {
  ASSERT_TRUE(root_->PutUser("carol", "first password", {"query"}).ok());
  auto first = Client("", "carol", "first password");
  ASSERT_TRUE(first->Query(Read("SELECT 1")).ok());
  ASSERT_TRUE(root_->PutUser("carol", "second password", {"query"}).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(first->Query(Read("SELECT 1")).status()));
  EXPECT_TRUE(
      Client("", "carol", "second password")->Query(Read("SELECT 1")).ok());
}

TEST_F(AuthTest, AClientCertificateNamesAStoredUser) {
  auto bob = Client("client-bob");
  EXPECT_TRUE(absl::IsUnauthenticated(bob->Query(Read("SELECT 1")).status()));
  ASSERT_TRUE(root_->PutUser("bob", "", {"execute"}).ok());
  EXPECT_TRUE(bob->Execute(Sql("INSERT INTO t VALUES (1)")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(bob->Query(Read("SELECT 1")).status()));
  auto listed = root_->ListUsers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->users_size(), 1);
  EXPECT_EQ(listed->users(0).name(), "bob");
  EXPECT_FALSE(listed->users(0).has_password());
}

TEST_F(AuthTest, ReservedNamesAndWeakPasswordsAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      root_->PutUser("root", "long enough", {"all"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      root_->PutUser("node-7", "long enough", {"all"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      root_->PutUser("dave", "short", {"all"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      root_->PutUser("dave", "long enough", {"superpowers"}).status()));
}

TEST(Passwords, HashAndVerify) {
  absl::StatusOr<std::string> h = HashPassword("a good password");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(VerifyPassword(*h, "a good password"));
  EXPECT_FALSE(VerifyPassword(*h, "a bad password"));
  EXPECT_NE(*HashPassword("a good password"), *h);  // Salted.
  EXPECT_FALSE(VerifyPassword("", "anything"));
}

}  // namespace
}  // namespace raftsql::server
