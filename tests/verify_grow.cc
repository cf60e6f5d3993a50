// Scenario grow (issue 14): a 3-node cluster grows to about 140 MB, then
// its log by 80 MiB of large entries, which only the log's byte bound
// compacts; a follower that was down meanwhile catches up by an image made
// from the leader's database. Fails on a
// failed or timed-out write, a leader change, a node whose peak RSS passes
// kMaxRssBytes, or a received image left behind.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {
namespace {

// 1 MB of rows per command.
constexpr char kMegabyte[] =
    "INSERT INTO t(v) SELECT randomblob(4096) FROM (WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 256) SELECT x FROM c)";
constexpr int kMegabytesBefore = 60;
// Written as 1 MiB parameters: the log itself grows by 80 MiB, and only
// its byte bound (--snapshot_log_bytes, 32 MiB) compacts it.
constexpr int kMegabytesWhileDown = 80;
// Before issue 14 a compaction held the database twice in memory.
constexpr uint64_t kMaxRssBytes = uint64_t{200} << 20;

uint64_t Term(LocalCluster& c, int node) {
  return Ok(c.client().Status(c.Endpoint(node)), "status").term();
}

void WriteBlobs(LocalCluster& c, int megabytes) {
  for (int i = 0; i < megabytes; ++i) {
    v1::ExecuteRequest request = Sql("INSERT INTO t(v) VALUES (?)");
    std::string blob(1 << 20, '\0');
    for (size_t b = 0; b < blob.size(); ++b) {
      blob[b] = static_cast<char>((b * 2654435761u + i) >> 13);
    }
    request.mutable_statements(0)->add_positional()->set_blob(blob);
    auto r = Ok(c.client().Execute(request), "a 1 MiB write");
    Check(r.results(0).code() == 0,
          "a 1 MiB write failed: " + r.results(0).error());
  }
}

void Write(LocalCluster& c, int megabytes) {
  for (int i = 0; i < megabytes; ++i) {
    auto r = Ok(c.client().Execute(Sql(kMegabyte)), "a 1 MB write");
    Check(r.results(0).code() == 0,
          "a 1 MB write failed: " + r.results(0).error());
  }
}

// A file in `dir` whose name holds `part` (a partial one never counts).
std::optional<std::filesystem::path> FileWith(const std::string& dir,
                                              const std::string& part) {
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = f.path().filename().string();
    if (absl::StrContains(name, part) && !absl::StrContains(name, ".partial")) {
      return f.path();
    }
  }
  return std::nullopt;
}

// The size of the image a leader made for a follower (0: none).
}  // namespace

void Grow(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  Ok(c.client().Execute(Sql("CREATE TABLE t(v BLOB)")), "create");
  const int leader = WaitLeader(c);
  const uint64_t term = Term(c, leader);
  const auto start = Clock::now();
  Write(c, kMegabytesBefore);
  const int down = leader % 3 + 1;
  c.StopNode(down, SIGKILL);
  Log(absl::StrCat(kMegabytesBefore, " MB written; SIGKILL node ", down));
  WriteBlobs(c, kMegabytesWhileDown);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  Log(absl::StrCat(kMegabytesBefore + kMegabytesWhileDown, " MB in ",
                   static_cast<int>(seconds * 1000), " ms"));
  Check(
      Ok(c.client().Status(c.Endpoint(leader)), "status").snapshot_index() > 0,
      "the leader never compacted its log");
  const auto back = Clock::now();
  Check(c.StartNode(down).ok(), "restart");
  // Both ends show the transfer while it runs (bounded: 60 s of polls).
  bool sender_shown = false;
  bool receiver_shown = false;
  uint64_t image = 0;  // Bytes, as the leader's Status shows them.
  for (int i = 0; i < 6000 && !(sender_shown && receiver_shown); ++i) {
    auto l = c.client().Status(c.Endpoint(leader));
    auto f = c.client().Status(c.Endpoint(down));
    if (l.ok()) {
      for (const auto& t : l->snapshot_transfers()) {
        if (t.sending() && t.peer() == static_cast<uint64_t>(down)) {
          image = std::max<uint64_t>(image, t.bytes_total());
          sender_shown |= t.bytes_total() > 0;
        }
      }
    }
    if (f.ok()) {
      for (const auto& t : f->snapshot_transfers()) {
        receiver_shown |= !t.sending() && t.bytes_done() > 0;
      }
    }
    if (f.ok() && f->applied_index() >= MaxApplied(c, 3)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Check(sender_shown && receiver_shown,
        absl::StrCat("Status did not show the transfer (sender ", sender_shown,
                     ", receiver ", receiver_shown, ")"));
  WaitConverged(c, 3, MaxApplied(c, 3), 60'000);
  const double catch_up =
      std::chrono::duration<double>(Clock::now() - back).count();
  Check(image > 0 && receiver_shown,
        "the returning node did not catch up by an image");
  // The leader served it from its database: no copy of it was written.
  Check(!FileWith(c.data_dir(leader), ".image-").has_value(),
        "the leader wrote an image file");
  const double floor = static_cast<double>(image) / kGrowSnapshotBytesPerSecond;
  Log(absl::StrCat(
      "a ", image >> 20, " MB image in ", static_cast<int>(catch_up * 1000),
      " ms (", static_cast<int>(image / catch_up) >> 20, " MB/s; the limit ",
      kGrowSnapshotBytesPerSecond >> 20, " MB/s)"));
  // A lower bound only: the limiter holds the rate down.
  Check(catch_up >= 0.9 * floor,
        absl::StrCat("the image came faster than its rate limit allows (",
                     static_cast<int>(floor * 1000), " ms at least)"));
  Check(!FileWith(c.data_dir(down), ".received").has_value(),
        "the received image was left behind");
  const int64_t rows = kMegabytesBefore * 256 + kMegabytesWhileDown;
  for (int node = 1; node <= 3; ++node) {
    net::Client pinned = Pinned(c, node);
    Check(Count(pinned, "SELECT count(*) FROM t", false) == rows,
          absl::StrCat("node ", node, " has the wrong rows"));
  }
  Log(absl::StrCat("node ", down, " caught up by an image; ", rows,
                   " rows on every node"));
  for (int node = 1; node <= 3; ++node) {
    Check(Term(c, node) == term,
          absl::StrCat("the term moved from ", term, " to ", Term(c, node),
                       " on node ", node, ": a leader change"));
    const uint64_t rss = tools::PeakRssBytes(c.Pid(node));
    const uint64_t loop_us =
        Ok(c.client().Status(c.Endpoint(node)), "status").longest_loop_us();
    Log(absl::StrCat("node ", node, " peak RSS ", rss >> 20,
                     " MB, longest loop iteration ", loop_us / 1000, " ms"));
    Check(rss > 0 && rss <= kMaxRssBytes,
          absl::StrCat("node ", node, " peak RSS ", rss >> 20,
                       " MB, over its bound of ", kMaxRssBytes >> 20, " MB"));
  }
}

}  // namespace raftsql::verify
