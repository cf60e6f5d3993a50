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
