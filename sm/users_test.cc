// Users are replicated through UserChange entries; internal tables (users'
// hashes, sessions' results) are nobody's to read.
#include "sm/users.h"

#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

core::Entry UserEntry(uint64_t index, UserChange::Op op, User u) {
  return core::Entry{1, index, core::EntryType::kNormal,
                     UserChange{op, std::move(u), 0}.Encode()};
}

absl::Status ResultOf(const std::string& out) {
  absl::StatusOr<CommandResult> r = CommandResult::Decode(out);
  EXPECT_TRUE(r.ok() && r->statements.size() == 1);
  return r.ok() && !r->statements.empty() ? r->statements[0].status
                                          : absl::InternalError("no result");
}

TEST(Users, AChangeAppliesAlikeOnEveryReplicaAndSurvivesASnapshot) {
  auto a = OpenMemory(), b = OpenMemory();
  const User alice{"alice", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                   kPermQuery | kPermExecute};
  for (auto* r : {a.get(), b.get()}) {
    EXPECT_TRUE(
        ResultOf(r->Apply(UserEntry(1, UserChange::Op::kPut, alice))).ok());
  }
  EXPECT_EQ(a->FindUser("alice"), alice);
  EXPECT_EQ(a->SerializeForTest(), b->SerializeForTest());
  core::Snapshot snap;
  snap.metadata.index = 1;
  snap.data = *a->CreateSnapshot();
  auto c = OpenMemory();
  ASSERT_TRUE(c->Restore(snap).ok());
  EXPECT_EQ(c->FindUser("alice"), alice);
  EXPECT_TRUE(
      ResultOf(a->Apply(UserEntry(2, UserChange::Op::kDelete, {"alice"})))
          .ok());
  EXPECT_FALSE(a->FindUser("alice").has_value());
  EXPECT_TRUE(absl::IsNotFound(
      ResultOf(a->Apply(UserEntry(3, UserChange::Op::kDelete, {"alice"})))));
}

TEST(Users, ReservedAndMalformedNamesAreRefused) {
  auto sm = OpenMemory();
  uint64_t index = 0;
  for (const char* name : {"root", "node-2", "", "a b", "x/y"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ResultOf(
        sm->Apply(UserEntry(++index, UserChange::Op::kPut, {name, "", 1})))))
        << name;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ResultOf(sm->Apply(
      core::Entry{1, ++index, core::EntryType::kNormal, "usr1\x07garbage"}))));
  EXPECT_TRUE(sm->Users().empty());
  EXPECT_EQ(sm->AppliedIndex(), index);
}

TEST(Users, PermissionsParseAndPrint) {
  EXPECT_EQ(*ParsePermissions({"query", "execute"}), kPermQuery | kPermExecute);
  EXPECT_EQ(*ParsePermissions({"all"}), kAllPermissions);
  EXPECT_FALSE(ParsePermissions({"superuser"}).ok());
  EXPECT_EQ(PermissionNames(kPermStatus | kPermJoin),
            (std::vector<std::string>{"status", "join"}));
}

TEST(Users, ADeviceIsNoOperatorAndRoundTrips) {
  EXPECT_EQ(*ParsePermissions({"device"}), kPermDevice);
  EXPECT_EQ(kAllPermissions & kPermDevice, 0u);
  UserChange put;
  put.user = User{"pump-7", "$argon2id$x", kPermDevice};
  auto decoded = UserChange::Decode(put.Encode());
  ASSERT_TRUE(decoded.has_value() && decoded->ok());
  EXPECT_EQ((*decoded)->user, put.user);
  put.user.permissions = kKnownPermissions + 1;
  decoded = UserChange::Decode(put.Encode());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_FALSE(decoded->ok());
}

TEST(InternalTables, AreUnreadableAndCannotBeCopiedOut) {
  auto sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE t(v)")}));
  Command with_session = Cmd({S("INSERT INTO t VALUES (1)")});
  with_session.session_id = 5;
  with_session.sequence = 1;
  ApplyOk(*sm, with_session);
  for (const char* sql :
       {"SELECT * FROM _raftsql_sessions", "SELECT hash FROM _raftsql_users",
        "SELECT * FROM _RAFTSQL_META"}) {
    absl::StatusOr<QueryResult> q = sm->Query(S(sql));
    EXPECT_TRUE(absl::IsPermissionDenied(q.status())) << sql << q.status();
  }
  CommandResult copy = ApplyOk(*sm, Cmd({S("INSERT INTO t SELECT sequence FROM "
                                           "_raftsql_sessions")}));
  EXPECT_TRUE(absl::IsPermissionDenied(copy.statements[0].status))
      << copy.statements[0].status;
  EXPECT_EQ(Count(*sm, "t"), 1);
  EXPECT_EQ(*sm->GetVersion("t"), 2u);  // Internal reads still work.
}

}  // namespace
}  // namespace raftsql::sm

namespace raftsql::sm {
namespace {

Command Owned(const std::string& user, uint64_t session, uint64_t sequence,
              int64_t now_ms, const std::string& sql) {
  Command c = Cmd({S(sql)});
  c.user = user;
  c.session_id = session;
  c.sequence = sequence;
  c.timestamp_ms = now_ms;
  return c;
}

TEST(Sessions, ASessionBelongsToTheUserWhoOpenedIt) {
  auto sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE t(v)")}));
  const int64_t now = 1'700'000'000'000;
  ApplyOk(*sm, Owned("alice", 9, 1, now, "INSERT INTO t VALUES (1)"));
  // Another user can neither replay alice's result nor jump her sequence.
  for (uint64_t seq : {uint64_t{1}, uint64_t{1} << 62}) {
    CommandResult r =
        ApplyOk(*sm, Owned("mallory", 9, seq, now, "INSERT INTO t VALUES (2)"));
    EXPECT_TRUE(absl::IsPermissionDenied(r.statements[0].status));
    EXPECT_FALSE(r.duplicate);
  }
  EXPECT_EQ(*sm->SessionSequence(9), 1u);
  CommandResult next =
      ApplyOk(*sm, Owned("alice", 9, 2, now, "INSERT INTO t VALUES (3)"));
  EXPECT_TRUE(next.statements[0].status.ok());
  EXPECT_EQ(Count(*sm, "t"), 2);
}

TEST(Sessions, AnIdleSessionExpiresAlikeOnEveryReplica) {
  auto a = OpenMemory(), b = OpenMemory();
  const int64_t t0 = 1'700'000'000'000;
  std::vector<core::Entry> batch = {
      core::Entry{
          1, 1, core::EntryType::kNormal,
          SettingChange{std::string(kSettingSessionIdle), 60'000, 0}.Encode()},
      core::Entry{1, 2, core::EntryType::kNormal,
                  SettingChange{std::string(kSettingSessionIdleEntries), 0, 0}
                      .Encode()},
      E(3, Cmd({S("CREATE TABLE t(v)")})),
      E(4, Owned("alice", 7, 1, t0, "INSERT INTO t VALUES (1)")),
      E(5, Owned("bob", 8, 1, t0 + 50'000, "INSERT INTO t VALUES (2)")),
      // Two minutes on: alice idle for 120 s, bob for 70 s; both go.
      E(6, Owned("carol", 9, 1, t0 + 120'000, "INSERT INTO t VALUES (3)")),
  };
  std::vector<std::string> ra = a->ApplyBatch(batch);
  std::vector<std::string> rb;
  for (const core::Entry& e : batch) rb.push_back(b->Apply(e));
  EXPECT_EQ(ra, rb);
  EXPECT_EQ(*a->SessionSequence(7), 0u);
  EXPECT_EQ(*a->SessionSequence(8), 0u);
  EXPECT_EQ(*a->SessionSequence(9), 1u);
  // The same state (page layouts may differ: one transaction or five).
  EXPECT_EQ(a->divergence_hash(), b->divergence_hash());
  for (uint64_t session : {7, 8, 9}) {
    EXPECT_EQ(*a->SessionSequence(session), *b->SessionSequence(session));
  }
  // An expired session starts over: its old sequence applies anew.
  CommandResult again = ApplyOk(
      *a, Owned("alice", 7, 1, t0 + 121'000, "INSERT INTO t VALUES (4)"));
  EXPECT_FALSE(again.duplicate);
  EXPECT_EQ(Count(*a, "t"), 4);
}

TEST(Commands, AnOlderCommandWithoutAUserStillDecodes) {
  Command c = Cmd({S("INSERT INTO t VALUES (?)", {Value::Integer(5)})});
  c.session_id = 3;
  c.sequence = 4;
  c.request_id = 99;
  const std::string now = c.Encode();
  // sql1: the same bytes without the user (8 bytes of length 0) before the
  // request id.
  const std::string v1 =
      "sql1" + now.substr(4, now.size() - 4 - 16) + now.substr(now.size() - 8);
  absl::StatusOr<Command> old = Command::Decode(v1);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(*old, c);
  EXPECT_EQ(Command::PeekRequestId(v1), 99u);
  c.user = "alice";
  EXPECT_EQ(Command::Decode(c.Encode())->user, "alice");
}

}  // namespace
}  // namespace raftsql::sm
