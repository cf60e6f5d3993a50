// What log compaction and catch-up cost the Raft loop as the database
// grows (issue 14), on a file database of 16 and 128 MB:
//   BM_CompactionCopy   the old compaction: a copy of the whole database
//                       (SnapshotData), which ran on the loop
//   BM_CompactionSync   today's: Sync() after a one-row batch
//   BM_ImageRequest     the loop's part of an image for a follower (a read
//                       transaction begins, the wal-index header is read)
//   BM_ImageReady       from the request until the image can be read (the
//                       thread reads the transaction's WAL frames)
//   BM_ImageRead        the loop's reads of the whole image, 1 MiB chunks
//   BM_ImageCheck       a follower's check of a received image (quick_check
//                       and the applied index), on 16-byte rows: the last
//                       step of a join, after the last chunk
//
//   ./bazelw run -c opt //bench:snapshot_benchmark
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "sm/image_source.h"
#include "sm/snapshot_image.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {
namespace {

constexpr int kMegabytesPerCommand = 4;

// A file database grown to `megabytes` of rows, kept for every benchmark
// of that size.
class Grown {
 public:
  // Rows of 4 KB blobs, or (`small_rows`) of an integer, a real and a
  // short text, the shape of edge readings.
  explicit Grown(int megabytes, bool small_rows = false) {
    char dir[] = "/tmp/raftsql-snapbench-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    dir_ = dir;
    SqliteOptions o;
    o.path = dir_ + "/db";
    path_ = o.path;
    auto sm = SqliteStateMachine::Open(o);
    if (!sm.ok()) std::abort();
    sm_ = std::move(*sm);
    Apply("CREATE TABLE t(v BLOB)");
    if (small_rows) {
      Apply("CREATE TABLE r(k INTEGER PRIMARY KEY, v REAL, s TEXT)");
      for (int i = 0; i < megabytes; ++i) {
        Apply(
            "INSERT INTO r(v, s) SELECT x * 1.5, 'temp' FROM (WITH RECURSIVE "
            "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
            "40000) SELECT x FROM c)");
      }
      return;
    }
    for (int i = 0; i < megabytes / kMegabytesPerCommand; ++i) {
      Apply(
          "INSERT INTO t(v) SELECT randomblob(4000) FROM (WITH RECURSIVE "
          "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
          "SELECT x FROM c)");
    }
  }
  ~Grown() {
    sm_.reset();
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  void Apply(const std::string& sql) {
    Command c;
    c.statements.push_back(Statement{sql, {}, {}});
    c.timestamp_ms = 1'700'000'000'000;
    c.random_seed = index_;
    sm_->Apply(core::Entry{1, ++index_, core::EntryType::kNormal, c.Encode()});
  }
  SqliteStateMachine& sm() { return *sm_; }
  core::SnapshotMetadata Now() const {
    return core::SnapshotMetadata{sm_->AppliedIndex(), 1, {{1}, {}}};
  }

 private:
  std::string dir_;
  std::string path_;
  std::unique_ptr<SqliteStateMachine> sm_;
  uint64_t index_ = 0;
};

Grown& Database(int megabytes) {
  // Destroyed at exit, which removes the files.
  static std::map<int, std::unique_ptr<Grown>> grown;
  std::unique_ptr<Grown>& g = grown[megabytes];
  if (g == nullptr) g = std::make_unique<Grown>(megabytes);
  return *g;
}

void BM_CompactionCopy(benchmark::State& state) {
  Grown& db = Database(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<std::string> image = db.sm().SnapshotData();
    if (!image.ok()) std::abort();
    benchmark::DoNotOptimize(image->data());
  }
  state.SetLabel(absl::StrCat(state.range(0), " MB"));
}
BENCHMARK(BM_CompactionCopy)->Arg(16)->Arg(128)->Unit(benchmark::kMillisecond);

void BM_CompactionSync(benchmark::State& state) {
  Grown& db = Database(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    db.Apply("INSERT INTO t(v) VALUES (randomblob(4000))");
    state.ResumeTiming();
    if (!db.sm().Sync().ok()) std::abort();
  }
}
BENCHMARK(BM_CompactionSync)->Arg(16)->Arg(128)->Unit(benchmark::kMillisecond);

// The image's size in the label: the benchmarks before it (BM_CompactionSync
// above all, a 4 KB row per iteration) have grown the database past its
// argument by then.
void LabelImage(benchmark::State& state, const ImageSource& images) {
  absl::StatusOr<core::ImageInfo> latest = images.Latest();
  if (latest.ok())
    state.SetLabel(absl::StrCat("image ", latest->size >> 20, " MB"));
}

void BM_ImageRequest(benchmark::State& state) {
  Grown& db = Database(static_cast<int>(state.range(0)));
  auto* images = static_cast<ImageSource*>(db.sm().snapshot_source());
  for (auto _ : state) {
    state.PauseTiming();
    db.Apply("INSERT INTO t(v) VALUES (randomblob(4000))");
    const core::SnapshotMetadata now = db.Now();
    state.ResumeTiming();
    images->Request(now);  // The loop's part.
    state.PauseTiming();
    images->Wait();
    state.ResumeTiming();
  }
  LabelImage(state, *images);
}
BENCHMARK(BM_ImageRequest)
    ->Arg(16)
    ->Arg(128)
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

void BM_ImageReady(benchmark::State& state) {
  Grown& db = Database(static_cast<int>(state.range(0)));
  auto* images = static_cast<ImageSource*>(db.sm().snapshot_source());
  for (auto _ : state) {
    state.PauseTiming();
    db.Apply("INSERT INTO t(v) VALUES (randomblob(4000))");
    const core::SnapshotMetadata now = db.Now();
    state.ResumeTiming();
    images->Request(now);
    images->Wait();
  }
  // No rate: what it reads is the WAL's frames, not the image.
  LabelImage(state, *images);
}
BENCHMARK(BM_ImageReady)
    ->Arg(16)
    ->Arg(128)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_ImageRead(benchmark::State& state) {
  Grown& db = Database(static_cast<int>(state.range(0)));
  auto* images = static_cast<ImageSource*>(db.sm().snapshot_source());
  db.Apply("INSERT INTO t(v) VALUES (randomblob(4000))");
  const core::SnapshotMetadata now = db.Now();
  images->Request(now);
  images->Wait();
  const uint64_t size = images->Latest()->size;
  constexpr uint64_t kChunkBytes = 1 << 20;
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (uint64_t at = 0; at < size; at += kChunkBytes) {
      absl::StatusOr<std::string> chunk =
          images->Read(now.index, at, kChunkBytes);
      if (!chunk.ok()) std::abort();
      bytes += chunk->size();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  LabelImage(state, *images);
}
BENCHMARK(BM_ImageRead)
    ->Arg(16)
    ->Arg(128)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_ImageCheck(benchmark::State& state) {
  // Roughly `megabytes` of 16-byte rows (40,000 per command).
  static std::map<int, std::unique_ptr<Grown>> grown;
  const int megabytes = static_cast<int>(state.range(0));
  std::unique_ptr<Grown>& db = grown[megabytes];
  if (db == nullptr) db = std::make_unique<Grown>(megabytes, true);
  db->sm().Sync().IgnoreError();  // The file holds what was applied.
  const uint64_t size = std::filesystem::file_size(db->path());
  for (auto _ : state) {
    SnapshotImage image;
    if (!image.OpenFile(db->path(), nullptr).ok() ||
        !image.Check(db->sm().AppliedIndex()).ok()) {
      std::abort();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(size * state.iterations()));
  state.SetLabel(absl::StrCat("image ", size >> 20, " MB"));
}
BENCHMARK(BM_ImageCheck)
    ->Arg(64)
    ->Arg(256)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace raftsql::sm

BENCHMARK_MAIN();
