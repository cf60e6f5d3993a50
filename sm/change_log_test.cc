// The change log on its own (append, read from an index, recovery,
// retention, start-over) and the state machine's capture into it (only
// what commits, each change once).
#include "sm/change_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/codec.h"
#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

// One entry's record, as ChangeCapture writes it.
std::string Record(uint64_t index, const std::vector<Change>& changes) {
  std::string payload;
  core::PutFixed64(payload, index);
  core::PutFixed32(payload, static_cast<uint32_t>(changes.size()));
  for (const Change& c : changes) EncodeChange(c, &payload);
  std::string out;
  core::AppendRecord(out, 1, payload);
  return out;
}

Change Insert(uint64_t index, int64_t rowid, std::string text) {
  Change c;
  c.index = index;
  c.table = "t";
  c.rowid = c.old_rowid = rowid;
  c.values = {Value::Integer(rowid), Value::Text(std::move(text))};
  return c;
}

// Everything the cursor has now.
std::vector<Change> Drain(ChangeLog::Cursor& c, uint64_t* covered) {
  std::vector<Change> all;
  while (true) {
    absl::StatusOr<std::vector<Change>> got = c.Next(1 << 10, covered);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || got->empty()) return all;
    all.insert(all.end(), got->begin(), got->end());
  }
}

std::vector<uint64_t> Indexes(const std::vector<Change>& changes) {
  std::vector<uint64_t> out;
  for (const Change& c : changes) out.push_back(c.index);
  return out;
}

TEST(ChangeLog, AReaderGetsTheChangesFromItsIndexOnAndThenNewOnes) {
  TempDir dir;
  auto log = ChangeLog::Open(dir.File("changes"), 0);
  ASSERT_TRUE(log.ok()) << log.status();
  for (uint64_t i = 1; i <= 5; ++i) {
    (*log)->Append(Record(i, {Insert(i, i, "v" + std::to_string(i))}), i);
    (*log)->CheckInvariants();
  }
  (*log)->Append("", 7);  // A batch that changed no rows.
  auto cursor = (*log)->Read(3);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  uint64_t covered = 0;
  std::vector<Change> got = Drain(**cursor, &covered);
  EXPECT_EQ(Indexes(got), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(got[0], Insert(3, 3, "v3"));
  EXPECT_EQ(covered, 7u);
  (*log)->Append(Record(8, {Insert(8, 8, "v8"), Insert(8, 9, "v9")}), 8);
  got = Drain(**cursor, &covered);
  EXPECT_EQ(Indexes(got), (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(covered, 8u);
}

TEST(ChangeLog, AReaderFromLateInASegmentSkipsToItsIndexInOneCall) {
  // Found by bench/watch_load: a watcher from the applied index got an
  // empty answer per megabyte skipped and waited for a wake-up each time
  // (changes arrived seconds late). One batch of 3 MB: no mark inside it,
  // so the reader must skip the megabytes itself.
  TempDir dir;
  auto log = ChangeLog::Open(dir.File("changes"), 0);
  ASSERT_TRUE(log.ok());
  std::string batch;
  for (uint64_t i = 1; i <= 300; ++i) {
    batch += Record(i, {Insert(i, i, std::string(10'000, 'x'))});
  }
  batch += Record(301, {Insert(301, 301, "late")});
  (*log)->Append(batch, 301);
  auto cursor = (*log)->Read(301);
  ASSERT_TRUE(cursor.ok());
  uint64_t covered = 0;
  absl::StatusOr<std::vector<Change>> got = (*cursor)->Next(1 << 20, &covered);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0], Insert(301, 301, "late"));
}

TEST(ChangeLog, AReaderStartsAtAMarkNearItsIndexAlsoAfterAReopen) {
  TempDir dir;
  auto log = ChangeLog::Open(dir.File("changes"), 0);
  ASSERT_TRUE(log.ok());
  for (uint64_t i = 1; i <= 300; ++i) {
    (*log)->Append(Record(i, {Insert(i, i, std::string(10'000, 'x'))}), i);
  }
  (*log)->Append(Record(301, {Insert(301, 301, "late")}), 301);
  auto cursor = (*log)->Read(301);
  ASSERT_TRUE(cursor.ok());
  uint64_t covered = 0;
  absl::StatusOr<std::vector<Change>> got = (*cursor)->Next(1 << 20, &covered);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0], Insert(301, 301, "late"));
  // From a mark near its index, not from the segment's start (3 MB).
  EXPECT_LT((*cursor)->bytes_read(), 200'000u);
  // Marks survive a reopen, and a reader from the middle gets the rest.
  log->reset();
  auto reopened = ChangeLog::Open(dir.File("changes"), 301);
  ASSERT_TRUE(reopened.ok());
  auto middle = (*reopened)->Read(150);
  ASSERT_TRUE(middle.ok());
  std::vector<Change> rest = Drain(**middle, &covered);
  ASSERT_EQ(rest.size(), 152u);
  EXPECT_EQ(rest.front().index, 150u);
  EXPECT_LT((*middle)->bytes_read(), 1'700'000u);
}

// A log reopened at index 4 takes batch 5 again (the log replays it), and
// a reader from 1 gets 1 to 5 with the replayed 5.
void ExpectTheReplayedFifthFollows(ChangeLog& log) {
  log.Append(Record(5, {Insert(5, 50, "replayed")}), 5);
  auto cursor = log.Read(1);
  ASSERT_TRUE(cursor.ok());
  uint64_t covered = 0;
  std::vector<Change> got = Drain(**cursor, &covered);
  EXPECT_EQ(Indexes(got), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(got.back(), Insert(5, 50, "replayed"));
  EXPECT_EQ(covered, 5u);
}

TEST(ChangeLog, AReopenDropsWhatTheDatabaseDidNotCommit) {
  TempDir dir;
  {
    auto log = ChangeLog::Open(dir.File("changes"), 0);
    ASSERT_TRUE(log.ok());
    for (uint64_t i = 1; i <= 5; ++i) {
      (*log)->Append(Record(i, {Insert(i, i, "x")}), i);
    }
  }
  // A torn tail, as a crash mid-write leaves.
  const std::string segment = dir.File("changes") + "/00000000000000000001.log";
  const int fd = open(segment.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "\x01\x02\x03", 3), 3);
  close(fd);
  auto log = ChangeLog::Open(dir.File("changes"), 4);  // 5 never committed.
  ASSERT_TRUE(log.ok());
  (*log)->CheckInvariants();
  EXPECT_EQ((*log)->covered(), 4u);
  ExpectTheReplayedFifthFollows(**log);
}

// Every Append of a 2 KB record fills a 1 KiB segment: segment i holds
// index i, and the newest (after the last) is empty.
ChangeLogOptions OneEntryASegment() {
  ChangeLogOptions o;
  o.segment_bytes = 1 << 10;
  return o;
}

// Batches 1 to 5 appended in `dir`, a segment each; then the process ends.
void AppendFiveSegments(const std::string& dir) {
  auto log = ChangeLog::Open(dir, 0, OneEntryASegment());
  ASSERT_TRUE(log.ok());
  for (uint64_t i = 1; i <= 5; ++i) {
    (*log)->Append(Record(i, {Insert(i, i, std::string(2000, 'x'))}), i);
  }
}

TEST(ChangeLog, AReopenReadsTheSegmentThatEndsBeyondTheDatabaseThrough) {
  TempDir dir;
  AppendFiveSegments(dir.File("changes"));
  // 5 was appended, then the crash came before its COMMIT.
  auto log = ChangeLog::Open(dir.File("changes"), 4, OneEntryASegment());
  ASSERT_TRUE(log.ok());
  (*log)->CheckInvariants();
  EXPECT_EQ((*log)->first_index(), 1u);
  EXPECT_EQ((*log)->covered(), 4u);
  ExpectTheReplayedFifthFollows(**log);
}

TEST(ChangeLog, AnOlderSegmentThatLostItsTailStartsTheLogOver) {
  TempDir dir;
  AppendFiveSegments(dir.File("changes"));
  // A power cut took the end of segment 2 (never synced), not the rest.
  const std::string segment = dir.File("changes") + "/00000000000000000002.log";
  std::filesystem::resize_file(segment,
                               std::filesystem::file_size(segment) - 5);
  auto log = ChangeLog::Open(dir.File("changes"), 5, OneEntryASegment());
  ASSERT_TRUE(log.ok());
  (*log)->CheckInvariants();
  EXPECT_EQ((*log)->first_index(), 6u);
  EXPECT_TRUE(absl::IsOutOfRange((*log)->Read(1).status()));
}

TEST(ChangeLog, ALogShortOfTheDatabaseStartsOverAndSaysSo) {
  TempDir dir;
  {
    auto log = ChangeLog::Open(dir.File("changes"), 0);
    ASSERT_TRUE(log.ok());
    (*log)->Append(Record(1, {Insert(1, 1, "x")}), 1);
  }
  // The database holds 9 (a power cut took the log's tail).
  auto log = ChangeLog::Open(dir.File("changes"), 9);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->first_index(), 10u);
  auto cursor = (*log)->Read(1);
  ASSERT_FALSE(cursor.ok());
  EXPECT_TRUE(absl::IsOutOfRange(cursor.status()));
  EXPECT_NE(cursor.status().message().find("oldest index this node's change "
                                           "log holds is 10"),
            std::string::npos)
      << cursor.status();
  EXPECT_TRUE((*log)->Read(10).ok());
}

// 1 KiB segments, 4 KiB kept: old segments go after a few appends.
ChangeLogOptions FourSmallSegments() {
  ChangeLogOptions o;
  o.segment_bytes = 1 << 10;
  o.max_bytes = 4 << 10;
  return o;
}

TEST(ChangeLog, OldSegmentsGoAndAReaderLeftBehindIsToldSo) {
  TempDir dir;
  const ChangeLogOptions o = FourSmallSegments();
  auto log = ChangeLog::Open(dir.File("changes"), 0, o);
  ASSERT_TRUE(log.ok());
  (*log)->Append(Record(1, {Insert(1, 1, std::string(100, 'a'))}), 1);
  auto slow = (*log)->Read(1);
  ASSERT_TRUE(slow.ok());
  for (uint64_t i = 2; i <= 200; ++i) {
    (*log)->Append(Record(i, {Insert(i, i, std::string(100, 'a'))}), i);
    (*log)->CheckInvariants();
  }
  EXPECT_LE((*log)->bytes(), o.max_bytes + o.segment_bytes + 200);
  EXPECT_GT((*log)->first_index(), 150u);
  EXPECT_TRUE(absl::IsOutOfRange((*log)->Read(1).status()));
  // The slow reader reads its open segment to its end, then is told.
  uint64_t covered = 0;
  absl::StatusOr<std::vector<Change>> got;
  for (int i = 0; i < 100; ++i) {
    got = (*slow)->Next(1 << 20, &covered);
    if (!got.ok()) break;
  }
  EXPECT_TRUE(absl::IsOutOfRange(got.status())) << got.status();
  // A reader from the oldest kept index reads to the end.
  auto fresh = (*log)->Read((*log)->first_index());
  ASSERT_TRUE(fresh.ok());
  std::vector<Change> rest = Drain(**fresh, &covered);
  EXPECT_EQ(rest.back().index, 200u);
  EXPECT_EQ(covered, 200u);
}

TEST(ChangeLog, ASyncOnAnotherThreadWhileSegmentsComeAndGoSucceeds) {
  TempDir dir;
  const ChangeLogOptions o = FourSmallSegments();
  auto log = ChangeLog::Open(dir.File("changes"), 0, o);
  ASSERT_TRUE(log.ok());
  ChangeLog& l = **log;
  std::atomic<bool> done{false};
  absl::Status failed;
  std::atomic<int> syncs{0};
  std::thread syncer([&] {
    while (!done.load() && failed.ok()) {
      failed = l.Sync();
      ++syncs;
    }
  });
  // Every 20 appends (a few segments: some rotate, some go) wait for a
  // sync that began after them, however the threads are scheduled.
  auto another_sync = [&syncs] {
    const int seen = syncs.load();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (syncs.load() < seen + 2 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return syncs.load() >= seen + 2;
  };
  bool overlapped = true;
  for (uint64_t i = 1; i <= 300 && overlapped; ++i) {
    l.Append(Record(i, {Insert(i, i, std::string(100, 'a'))}), i);
    if (i % 20 == 0) overlapped = another_sync();
  }
  l.Reset(400);  // Every segment dropped, a new one begun.
  l.Append(Record(401, {Insert(1, 1, "b")}), 401);
  overlapped = overlapped && another_sync();
  done = true;
  syncer.join();
  EXPECT_TRUE(overlapped);
  EXPECT_TRUE(failed.ok()) << failed;
  EXPECT_TRUE(l.Sync().ok());
}

TEST(ChangeLog, AResetEndsEveryReader) {
  TempDir dir;
  auto log = ChangeLog::Open(dir.File("changes"), 0);
  ASSERT_TRUE(log.ok());
  (*log)->Append(Record(1, {Insert(1, 1, "x")}), 1);
  auto cursor = (*log)->Read(1);
  ASSERT_TRUE(cursor.ok());
  (*log)->Reset(40);  // A snapshot from the leader.
  (*log)->CheckInvariants();
  uint64_t covered = 0;
  EXPECT_TRUE(absl::IsOutOfRange((*cursor)->Next(1 << 20, &covered).status()));
  EXPECT_EQ((*log)->first_index(), 41u);
  EXPECT_EQ((*log)->covered(), 40u);
}

// The state machine's capture.
class Capture : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = OpenFile(dir_.File("db.sqlite"));
    ASSERT_NE(sm_->change_log(), nullptr);
  }
  std::vector<Change> From(uint64_t index) {
    auto cursor = sm_->change_log()->Read(index);
    EXPECT_TRUE(cursor.ok()) << cursor.status();
    uint64_t covered = 0;
    std::vector<Change> all = Drain(**cursor, &covered);
    EXPECT_EQ(covered, sm_->AppliedIndex());
    return all;
  }
  TempDir dir_;
  std::unique_ptr<SqliteStateMachine> sm_;
};

TEST_F(Capture, OnlyWhatCommitsIsCapturedOnce) {
  ApplyOk(*sm_, Cmd({S("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT "
                       "UNIQUE)")}));
  const uint64_t start = sm_->AppliedIndex();
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a'), (2, 'b')")}));
  // A failed statement, and an all-or-nothing command that failed.
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (3, 'c')"),
                     S("INSERT INTO t VALUES (4, 'a')")}));
  Command all = Cmd(
      {S("INSERT INTO t VALUES (5, 'e')"), S("INSERT INTO t VALUES (6, 'a')")});
  all.transaction = true;
  ApplyOk(*sm_, all);
  ApplyOk(*sm_, Cmd({S("UPDATE t SET id = 10, v = 'bb' WHERE id = 2")}));
  ApplyOk(*sm_, Cmd({S("DELETE FROM t WHERE id = 1")}));
  // A batch that loses its transaction is redone entry by entry.
  const uint64_t i = sm_->AppliedIndex();
  sm_->ApplyBatch({E(i + 1, Cmd({S("INSERT INTO t VALUES (20, 'u')")})),
                   E(i + 2, Cmd({S("INSERT OR ROLLBACK INTO t VALUES (21, "
                                   "'u')")})),
                   E(i + 3, Cmd({S("INSERT INTO t VALUES (22, 'w')")}))});
  sm_->CheckInvariants();
  std::vector<Change> got = From(start + 1);
  std::vector<std::string> shown;
  for (const Change& c : got) {
    std::string line = std::to_string(c.index - start) + " " +
                       std::to_string(static_cast<int>(c.op)) + " " +
                       std::to_string(c.old_rowid) + "->" +
                       std::to_string(c.rowid);
    for (const Value& v : c.values) line += " " + v.DebugString();
    shown.push_back(line);
  }
  EXPECT_EQ(shown, (std::vector<std::string>{
                       "1 0 1->1 1 'a'",
                       "1 0 2->2 2 'b'",
                       "2 0 3->3 3 'c'",
                       "4 1 2->10 10 'bb'",
                       "5 2 1->1 1 'a'",
                       "6 0 20->20 20 'u'",
                       "8 0 22->22 22 'w'",
                   }));
}

TEST_F(Capture, SchemaChangesAndKeysWithoutRowidAreShownAndInternalsNot) {
  const uint64_t start = sm_->AppliedIndex() + 1;
  ApplyOk(*sm_, Cmd({S("CREATE TABLE k(a TEXT PRIMARY KEY, b) WITHOUT ROWID"),
                     S("INSERT INTO k VALUES ('x', 1)")}));
  Command session = Cmd({S("DELETE FROM k WHERE a = 'x'")});
  session.session_id = 7;
  session.sequence = 1;
  ApplyOk(*sm_, session);  // Writes _raftsql_sessions too.
  std::vector<Change> got = From(start);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].op, Change::Op::kSchema);
  EXPECT_EQ(got[0].table, "k");
  EXPECT_EQ(got[1].op, Change::Op::kInsert);
  EXPECT_EQ(got[2].op, Change::Op::kDelete);
  EXPECT_EQ(got[2].values,
            (std::vector<Value>{Value::Text("x"), Value::Integer(1)}));
}

TEST_F(Capture, TheLogSurvivesARestartAndStartsOverAtASnapshot) {
  ApplyOk(*sm_, Cmd({S("CREATE TABLE t(v)"), S("INSERT INTO t VALUES (1)")}));
  ASSERT_TRUE(sm_->Sync().ok());
  const uint64_t applied = sm_->AppliedIndex();
  sm_.reset();
  sm_ = OpenFile(dir_.File("db.sqlite"));
  EXPECT_EQ(From(1).size(), 2u);  // The schema change and the insert.
  absl::StatusOr<std::string> image = sm_->CreateSnapshot();
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(sm_->Restore(core::Snapshot{{applied, 1, {}}, *image}).ok());
  EXPECT_EQ(sm_->change_log()->first_index(), applied + 1);
  sm_->CheckInvariants();
}

}  // namespace
}  // namespace raftsql::sm
