// SQLite's switches (foreign keys, recursive triggers, LIKE's case) are
// cluster settings: set through the log, in force from the next entry on
// every replica whatever its batches, kept across reopen and snapshots.
#include "sm/settings.h"

#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

std::vector<core::Entry> ForeignKeyLog() {
  std::vector<core::Entry> log;
  auto add = [&log](const Command& c) { log.push_back(E(log.size() + 1, c)); };
  add(Cmd({S("CREATE TABLE parent(id INTEGER PRIMARY KEY)"),
           S("CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER "
             "REFERENCES parent(id) ON DELETE CASCADE)")}));
  add(Cmd({S("INSERT INTO parent VALUES (1)"),
           S("INSERT INTO child VALUES (10, 1)")}));
  add(Cmd({S("INSERT INTO child VALUES (11, 99)")}));  // Allowed: off.
  log.push_back(SettingEntry(log.size() + 1, kSettingForeignKeys, 1));
  add(Cmd({S("INSERT INTO child VALUES (12, 98)")}));  // Refused: on.
  add(Cmd({S("DELETE FROM parent WHERE id = 1")}));    // Cascades.
  return log;
}

TEST(ClusterSwitches, ForeignKeysApplyFromTheNextEntryWhateverTheBatches) {
  const std::vector<core::Entry> log = ForeignKeyLog();
  auto batched = OpenMemory();
  const std::vector<std::string> out = batched->ApplyBatch(log);
  auto alone = OpenMemory();
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(alone->Apply(log[i]), out[i]) << "entry " << i + 1;
  }
  EXPECT_TRUE(Decoded(out[2]).statements[0].status.ok());
  const absl::Status refused = Decoded(out[4]).statements[0].status;
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("FOREIGN KEY"), absl::string_view::npos);
  // The cascade removed child 10; child 11 (written while off) stays.
  EXPECT_EQ(Count(*batched, "child"), 1);
  EXPECT_EQ(batched->write_settings().foreign_keys, 1u);
  EXPECT_NE(DumpDatabase(*batched).find("table child"), std::string::npos);
  EXPECT_EQ(DumpDatabase(*batched), DumpDatabase(*alone));
  EXPECT_EQ(batched->divergence_hash(), alone->divergence_hash());
}

TEST(ClusterSwitches, TheyAreKeptAcrossReopenAndInSnapshots) {
  TempDir dir;
  const std::string path = dir.File("db.sqlite");
  std::string image;
  {
    auto sm = SqliteStateMachine::Open(SqliteOptions{.path = path});
    ASSERT_TRUE(sm.ok());
    ApplyOk(**sm, Cmd({S("CREATE TABLE parent(id INTEGER PRIMARY KEY)"),
                       S("CREATE TABLE child(parent REFERENCES parent(id))")}));
    EXPECT_TRUE(Decoded((*sm)->Apply(SettingEntry(2, kSettingForeignKeys, 1)))
                    .statements[0]
                    .status.ok());
    image = *(*sm)->CreateSnapshot();
  }
  auto reopened = SqliteStateMachine::Open(SqliteOptions{.path = path});
  ASSERT_TRUE(reopened.ok());
  auto restored = OpenMemory();
  core::Snapshot snap;
  snap.metadata.index = 2;
  snap.data = image;
  ASSERT_TRUE(restored->Restore(snap).ok());
  for (SqliteStateMachine* sm : {reopened->get(), restored.get()}) {
    const CommandResult r =
        ApplyOk(*sm, Cmd({S("INSERT INTO child VALUES (5)")}));
    EXPECT_TRUE(absl::IsFailedPrecondition(r.statements[0].status))
        << r.statements[0].status;
  }
}

TEST(ClusterSwitches, CaseSensitiveLikeAndRecursiveTriggers) {
  auto sm = OpenMemory();
  ApplyOk(*sm,
          Cmd({S("CREATE TABLE w(v TEXT)"), S("INSERT INTO w VALUES ('Apple')"),
               S("CREATE TABLE hits(n)")}));
  const std::string like =
      "INSERT INTO hits SELECT count(*) FROM w "
      "WHERE v LIKE 'apple'";
  ApplyOk(*sm, Cmd({S(like)}));
  sm->Apply(SettingEntry(sm->AppliedIndex() + 1, kSettingCaseSensitiveLike, 1));
  ApplyOk(*sm, Cmd({S(like)}));
  EXPECT_EQ(QueryValue(*sm, "SELECT group_concat(n) FROM hits"),
            Value::Text("1,0"));

  // A trigger that fires itself: to its end (bounded by its WHEN) by
  // default, once without the switch.
  ApplyOk(*sm, Cmd({S("CREATE TABLE c(n)"),
                    S("CREATE TRIGGER again AFTER INSERT ON c WHEN new.n < 5 "
                      "BEGIN INSERT INTO c VALUES (new.n + 1); END")}));
  ApplyOk(*sm, Cmd({S("INSERT INTO c VALUES (0)")}));
  EXPECT_EQ(Count(*sm, "c"), 6);
  sm->Apply(SettingEntry(sm->AppliedIndex() + 1, kSettingRecursiveTriggers, 0));
  ApplyOk(*sm, Cmd({S("INSERT INTO c VALUES (0)")}));
  EXPECT_EQ(Count(*sm, "c"), 6 + 2);
}

TEST(ClusterSwitches, APragmaThatWouldSetOneConnectionNamesTheSetting) {
  auto sm = OpenMemory();
  const absl::Status s = sm->Validate(Cmd({S("PRAGMA foreign_keys = ON")}));
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_NE(s.message().find("cluster setting foreign_keys"),
            absl::string_view::npos)
      << s;
  EXPECT_TRUE(sm->Query(S("PRAGMA foreign_keys")).ok());
}

}  // namespace
}  // namespace raftsql::sm
