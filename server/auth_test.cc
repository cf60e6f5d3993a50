// Clients authenticate and have permissions: a one-node TLS server on
// loopback (real RocksDB, SQLite, gRPC), certificates from tools/certs.
#include "server/auth.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "net/client.h"
#include "net/grpc_transport.h"
#include "server/raft_server.h"
#include "server/service.h"
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
    char dir[] = "/tmp/raftsql-auth-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    certs_ = dir_ + "/certs";
    ASSERT_TRUE(tools::EnsureLocalClusterCerts(certs_, 1).ok());
    ASSERT_TRUE(tools::CreateClientCert(certs_, "bob").ok());
    ServerOptions o;
    o.id = 1;
    o.listen = absl::StrCat("127.0.0.1:", tools::FreePort());
    o.peers = {{1, o.listen}};
    o.data_dir = dir_ + "/data";
    o.tick_ms = 5;
    o.tls = *net::LoadTlsDir(certs_, "node-1");
    auto node = RaftServer::Open(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto frontend = GrpcFrontend::Start(node_.get());
    ASSERT_TRUE(frontend.ok()) << frontend.status();
    frontend_ = std::move(*frontend);
    node_->Start();
    endpoint_ = o.listen;
    root_ = Client("client-root");
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      auto s = root_->Status(endpoint_);
      if (s.ok() && s->role() == "Leader") break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no leader";
      std::this_thread::yield();
    }
    ASSERT_TRUE(root_->Execute(Sql("CREATE TABLE t(v)")).ok());
  }

  void TearDown() override {
    if (node_ != nullptr) node_->Shutdown();
    if (frontend_ != nullptr) frontend_->Shutdown(1000);
    node_.reset();
    std::filesystem::remove_all(dir_);
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

  std::string dir_, certs_, endpoint_;
  std::unique_ptr<RaftServer> node_;
  std::unique_ptr<GrpcFrontend> frontend_;
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
  std::optional<sm::User> stored = node_->FindUser("alice");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->password_hash.rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(stored->password_hash.find("correct horse"), std::string::npos);
  // Dropped, it is nobody.
  ASSERT_TRUE(root_->DropUser("alice").ok());
  EXPECT_TRUE(absl::IsUnauthenticated(alice->Query(Read("SELECT 1")).status()));
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
