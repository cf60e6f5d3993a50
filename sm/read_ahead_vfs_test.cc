#include "sm/read_ahead_vfs.h"

#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sm/temp_dir.h"

namespace raftsql::sm {
namespace {

constexpr int kRows = 8000;  // 1,000 bytes each: about 8.5 MB.

void Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
}

// A database in rollback mode (as a received image is) of kRows rows,
// with an index whose pages lie all over the file, or none.
void Fill(const std::string& path, bool index) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  Exec(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
  if (index) Exec(db, "CREATE INDEX t_v ON t(v)");
  Exec(db,
       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
       "WHERE x < 8000) INSERT INTO t(v) SELECT printf('%.900c', "
       "char(97 + x % 26)) || x FROM c;");
  sqlite3_close(db);
}

// The first row of `sql` as text, on `path` opened read-only through `vfs`.
std::string FirstRow(const std::string& path, const char* vfs,
                     const char* sql) {
  sqlite3* db = nullptr;
  std::string out = "(open failed)";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, vfs) ==
      SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    out = "(no row)";
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

ReadAheadCounts CountsForQuickCheck(const std::string& path) {
  const ReadAheadCounts before = ReadAheadCountsSoFar();
  EXPECT_EQ(FirstRow(path, ReadAheadVfsName(), "PRAGMA quick_check"), "ok");
  const ReadAheadCounts after = ReadAheadCountsSoFar();
  return {.blocks = after.blocks - before.blocks,
          .reads_alone = after.reads_alone - before.reads_alone,
          .prefetched = after.prefetched - before.prefetched};
}

TEST(ReadAheadVfs, ATableFilledInOrderIsReadInBlocksNotPages) {
  TempDir dir;
  const std::string path = dir.File("db");
  Fill(path, /*index=*/false);
  // About 2,000 pages of 4 KiB in 8 MB. quick_check walks the table from
  // its last page back to its first, then scans it forwards: each block
  // read about twice, a page read alone where a walk turns (2,000 read
  // alone when only reads forwards counted as in order).
  const ReadAheadCounts counts = CountsForQuickCheck(path);
  EXPECT_GE(counts.blocks, 7u);
  EXPECT_LE(counts.blocks, 24u);
  EXPECT_LE(counts.reads_alone, 40u);
  // Each block but the first of a walk was read ahead.
  EXPECT_GE(counts.prefetched, counts.blocks / 2);
  EXPECT_EQ(FirstRow(path, ReadAheadVfsName(),
                     "SELECT count(*) || ' ' || sum(length(v)) FROM t"),
            FirstRow(path, nullptr,
                     "SELECT count(*) || ' ' || sum(length(v)) FROM t"));
}

TEST(ReadAheadVfs, PagesAllOverTheFileAreReadAlone) {
  TempDir dir;
  const std::string path = dir.File("db");
  Fill(path, /*index=*/true);
  // About 4,500 pages in 18 MB, the index's in random order: blocks only
  // where reads run in order, not one per page (2,600 when every read
  // that missed read a block).
  EXPECT_LE(CountsForQuickCheck(path).blocks, 200u);
}

TEST(ReadAheadVfs, ACorruptPageIsStillFound) {
  TempDir dir;
  const std::string path = dir.File("db");
  Fill(path, /*index=*/true);
  // Page 100's header (a B-tree page of the table or its index) overwritten.
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fseek(f, 99 * 4096, SEEK_SET), 0);
  const std::vector<char> junk(64, '\x7f');
  ASSERT_EQ(std::fwrite(junk.data(), 1, junk.size(), f), junk.size());
  std::fclose(f);
  EXPECT_NE(FirstRow(path, ReadAheadVfsName(), "PRAGMA quick_check"), "ok");
}

TEST(ReadAheadVfs, AReadPastTheEndIsZeroedAndShort) {
  TempDir dir;
  const std::string path = dir.File("file");
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string content(5000, 'x');
  ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), f), content.size());
  std::fclose(f);
  sqlite3_vfs* vfs = sqlite3_vfs_find(ReadAheadVfsName());
  ASSERT_NE(vfs, nullptr);
  std::vector<char> storage(vfs->szOsFile);
  auto* file = reinterpret_cast<sqlite3_file*>(storage.data());
  int out_flags = 0;
  ASSERT_EQ(vfs->xOpen(vfs, path.c_str(), file,
                       SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB, &out_flags),
            SQLITE_OK);
  std::vector<char> page(4096, 'q');
  EXPECT_EQ(file->pMethods->xRead(file, page.data(), 4096, 0), SQLITE_OK);
  EXPECT_EQ(std::string(page.data(), 4096), content.substr(0, 4096));
  EXPECT_EQ(file->pMethods->xRead(file, page.data(), 4096, 4096),
            SQLITE_IOERR_SHORT_READ);
  EXPECT_EQ(std::string(page.data(), 904), content.substr(4096));
  EXPECT_EQ(std::string(page.data() + 904, 4096 - 904),
            std::string(4096 - 904, '\0'));
  EXPECT_EQ(file->pMethods->xRead(file, page.data(), 100, 1 << 20),
            SQLITE_IOERR_SHORT_READ);
  EXPECT_EQ(std::string(page.data(), 100), std::string(100, '\0'));
  EXPECT_EQ(file->pMethods->xClose(file), SQLITE_OK);
}

TEST(ReadAheadVfs, AFileOpenedForWritingIsThePlatformsOwn) {
  TempDir dir;
  const std::string path = dir.File("db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            ReadAheadVfsName()),
            SQLITE_OK);
  Exec(db, "CREATE TABLE t(v); INSERT INTO t VALUES ('one');");
  Exec(db, "UPDATE t SET v = 'two';");  // Read after written: not stale.
  sqlite3_close(db);
  EXPECT_EQ(FirstRow(path, ReadAheadVfsName(), "SELECT v FROM t"), "two");
}

}  // namespace
}  // namespace raftsql::sm
