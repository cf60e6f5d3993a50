// Scenario nemesis (issue 19, point 5): a seeded schedule of faults on real
// processes while clients record what they saw, checked afterwards with
// the simulator's own linearizability checker and a bank invariant.
//
// Faults, one at a time (a majority always stays up): kill -9 and restart,
// SIGSTOP for longer than the election timeout then SIGCONT, SIGTERM and
// restart, a node cut off from its peers (both ways, or only what it
// sends), its wall clock moved back an hour or a month (ahead too with
// --forward_clock_jumps; Debian's libfaketime, preloaded; the monotonic
// clock is left alone, as NTP leaves it), its disk filled (its data directory
// is a tmpfs of its own, which needs CAP_SYS_ADMIN; a node that stops on the
// full disk is restarted once it is emptied); the node is the leader half of
// the time. The last two are left out where the machine cannot do them. Every
// node reaches each peer through a proxy of that link (tests/link_proxy.h), so
// the partitions cut Raft's traffic; a follower's forwarding to the leader and
// the clients go to the client ports, which no proxy cuts. Clients (each its
// own net::Client, so its own sessions) write registers (every value distinct),
// read them linearizably, move money between accounts in one statement, read
// the total linearizably, and add one to a counter (which must end between the
// increments acknowledged and those plus the ones whose outcome is unknown: a
// retry applied twice shows). A write answered UNAVAILABLE wrote nothing (the
// error model); any other failure leaves its outcome unknown, which the checker
// allows either way.
//
// Prints the operations acknowledged, the anomalies (a history that is not
// linearizable, a total that changed, replicas that differ) and, for each
// fault, the longest time no client's write succeeded.
#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/prng.h"
#include "sim/linearizability.h"
#include "tests/link_proxy.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {
namespace {

constexpr int kBalance = 100;  // Each account's starting balance.
// The checker's search bound per key (the simulator's default sweep uses
// the same order of magnitude).
constexpr uint64_t kMaxStepsPerKey = 2'000'000;

// Microseconds since `t0`.
uint64_t Since(Clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
          .count());
}

struct Fault {
  std::string what;
  uint64_t start_us = 0;
  uint64_t end_us = 0;  // When the node was back.
};

struct ClientLog {
  std::vector<std::pair<uint64_t, sim::RegisterOp>> ops;  // (key, op)
  std::vector<uint64_t> write_oks;  // When each successful write returned.
  int writes_ok = 0, writes_unknown = 0, writes_refused = 0;
  int reads_ok = 0, reads_failed = 0;
  int transfers_ok = 0, transfers_unknown = 0;
  int totals_read = 0;
  int increments_ok = 0, increments_unknown = 0;
  std::vector<std::string> anomalies;
};

void RunClient(LocalCluster& c, const NemesisOptions& o, int id,
               Clock::time_point t0, const std::atomic<bool>& stop,
               ClientLog* log) {
  net::ClientOptions co = c.ClientOptionsFor();
  co.timeout_ms = 2'000;  // A frozen node must not hold a client for long.
  net::Client client(c.Endpoints(), co);
  core::Prng rng(o.seed * 1'000 + static_cast<uint64_t>(id));
  int64_t counter = 0;
  while (!stop.load()) {
    const uint64_t pick = rng.Next() % 11;
    const int64_t key = static_cast<int64_t>(rng.Next() % o.keys) + 1;
    const uint64_t call = Since(t0);
    if (pick < 4) {  // Write a register.
      const int64_t value = (static_cast<int64_t>(id) << 32) | ++counter;
      auto r = client.Execute(
          Sql("INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE "
              "SET v = excluded.v",
              {key, value}));
      sim::RegisterOp op{static_cast<uint64_t>(id), true, value, call,
                         Since(t0)};
      if (r.ok() && r->results(0).code() == 0) {
        ++log->writes_ok;
        log->write_oks.push_back(op.ret);
      } else if (!r.ok() && absl::IsUnavailable(r.status())) {
        ++log->writes_refused;  // Nothing written.
        continue;
      } else {
        ++log->writes_unknown;
        op.ret = sim::kNeverReturned;
      }
      log->ops.emplace_back(key, op);
    } else if (pick < 7) {  // Read a register.
      auto r = client.Query(
          Read(absl::StrCat("SELECT coalesce((SELECT v FROM kv WHERE k = ", key,
                            "), 0)"),
               /*linearizable=*/true));
      if (!r.ok() || r->rows_size() != 1) {
        ++log->reads_failed;
        continue;
      }
      ++log->reads_ok;
      log->ops.emplace_back(
          key,
          sim::RegisterOp{static_cast<uint64_t>(id), false,
                          r->rows(0).values(0).integer(), call, Since(t0)});
    } else if (pick < 9) {  // Move money, in one statement.
      const int64_t from = static_cast<int64_t>(rng.Next() % o.accounts) + 1;
      const int64_t to = from % o.accounts + 1;
      const int64_t amount = static_cast<int64_t>(rng.Next() % 10) + 1;
      auto r = client.Execute(
          Sql("UPDATE bank SET balance = balance + CASE id WHEN ?1 THEN -?3 "
              "ELSE ?3 END WHERE id IN (?1, ?2)",
              {from, to, amount}));
      if (r.ok() && r->results(0).code() == 0) {
        ++log->transfers_ok;
        log->write_oks.push_back(Since(t0));
      } else if (r.ok() || !absl::IsUnavailable(r.status())) {
        ++log->transfers_unknown;
      }
    } else if (pick == 10) {  // Count, once per acknowledged increment.
      auto r = client.Execute(Sql("UPDATE counter SET n = n + 1 WHERE id = 1"));
      if (r.ok() && r->results(0).code() == 0) {
        ++log->increments_ok;
        log->write_oks.push_back(Since(t0));
      } else if (r.ok() || !absl::IsUnavailable(r.status())) {
        ++log->increments_unknown;
      }
    } else {  // The total never changes.
      auto r = client.Query(Read("SELECT sum(balance) FROM bank", true));
      if (!r.ok() || r->rows_size() != 1) continue;
      ++log->totals_read;
      const int64_t total = r->rows(0).values(0).integer();
      if (total != static_cast<int64_t>(o.accounts) * kBalance) {
        log->anomalies.push_back(absl::StrCat("client ", id,
                                              " read a total of ", total,
                                              " at ", Since(t0) / 1000, " ms"));
      }
    }
  }
}

using Links = std::map<std::pair<int, int>, std::unique_ptr<LinkProxy>>;

// Cuts (or mends) node's links: those it sends on, and if `both`, those it
// hears on.
void SetLinks(Links& links, int node, bool both, bool cut) {
  for (auto& [ends, proxy] : links) {
    if (ends.first == node || (both && ends.second == node)) {
      if (cut) {
        proxy->Cut();
      } else {
        proxy->Mend();
      }
    }
  }
}

constexpr char kFaketime[] =
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

// Where node `data_dir`'s clock offset is (libfaketime's timestamp file).
std::string ClockFile(const std::string& data_dir) {
  return data_dir + ".faketime";
}

void SetClock(const std::string& data_dir, const std::string& offset) {
  std::ofstream(ClockFile(data_dir), std::ios::trunc) << offset << "\n";
}

// Each node's data directory on a tmpfs of its own (kDiskBytes), so that
// the nemesis can fill it. The destructor stops the nodes and unmounts.
class NodeDisks {
 public:
  static constexpr const char* kSize = "size=512m";
  explicit NodeDisks(LocalCluster& c) : c_(c) {
    for (int id = 1; id <= c.size(); ++id) {
      const std::string dir = c.data_dir(id);
      std::filesystem::create_directories(dir);
      if (mount("tmpfs", dir.c_str(), "tmpfs", 0, kSize) != 0) {
        why_not_ = absl::StrCat("mount tmpfs on ", dir, ": ", strerror(errno));
        return;
      }
      mounted_.push_back(dir);
    }
  }
  ~NodeDisks() {
    if (mounted_.empty()) return;
    for (int id = 1; id <= c_.size(); ++id) c_.StopNode(id, SIGKILL);
    for (const std::string& dir : mounted_) umount2(dir.c_str(), MNT_DETACH);
  }
  bool ok() const { return why_not_.empty(); }
  const std::string& why_not() const { return why_not_; }

 private:
  LocalCluster& c_;
  std::vector<std::string> mounted_;
  std::string why_not_;
};

// Fills node `id`'s disk (until a write fails); returns the filler's size.
uint64_t FillDisk(LocalCluster& c, int id) {
  std::ofstream filler(c.data_dir(id) + "/filler", std::ios::binary);
  const std::string mib(1 << 20, 'f');
  uint64_t written = 0;
  while (filler.write(mib.data(), static_cast<std::streamsize>(mib.size()))) {
    filler.flush();
    if (!filler) break;
    written += mib.size();
  }
  return written;
}

// A node that stopped by itself (a full disk) is started again.
std::string RestartIfExited(LocalCluster& c, int id) {
  int status = 0;
  if (!c.Running(id) || !tools::WaitExit(c.Pid(id), 0, &status)) return "";
  c.ForgetNode(id);
  Check(c.StartNode(id).ok(), "restart after it stopped by itself");
  return absl::StrCat("; it stopped by itself (status ", status,
                      ") and was restarted");
}

// One fault of the schedule (the nemesis's clock is the wall's: the
// schedule is seeded, the timings are the machine's). Clock jumps and
// full disks run where `clocks` and `disks` say the machine can.
Fault RunFault(LocalCluster& c, Links& links, core::Prng& rng,
               Clock::time_point t0, bool clocks, bool disks,
               bool forward_jumps) {
  int node = static_cast<int>(rng.Next() % c.size()) + 1;
  bool at_leader = false;
  if (rng.Next() % 2 == 0) {
    // One pass over the nodes (a leader may be electing: then none).
    if (absl::StatusOr<int> leader = c.WaitForLeader(1); leader.ok()) {
      node = *leader;
      at_leader = true;
    }
  }
  uint64_t kind = rng.Next() % 7;
  if ((kind == 5 && !clocks) || (kind == 6 && !disks)) kind -= 5;
  const int down_ms = 600 + static_cast<int>(rng.Next() % 1400);
  Fault f;
  f.start_us = Since(t0);
  const std::string who =
      absl::StrCat("node ", node, at_leader ? " (the leader)" : "");
  if (kind == 0) {
    f.what =
        absl::StrCat("kill -9 ", who, ", restarted after ", down_ms, " ms");
    c.StopNode(node, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    Check(c.StartNode(node).ok(), "restart after kill -9");
  } else if (kind == 1) {
    f.what = absl::StrCat("SIGSTOP ", who, " for ", down_ms, " ms");
    kill(c.Pid(node), SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    kill(c.Pid(node), SIGCONT);
  } else if (kind == 2) {
    f.what =
        absl::StrCat("SIGTERM ", who, ", restarted after ", down_ms, " ms");
    c.StopNode(node, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    Check(c.StartNode(node).ok(), "restart after SIGTERM");
  } else if (kind == 5) {
    // Back an hour or a month (before the certificates' start: the node
    // cannot make TLS connections meanwhile); with forward_jumps, ahead as
    // much too (past the sessions' idle bound, a week). A fake clock ahead
    // makes the process's waits on absolute wall-clock deadlines (Debian's
    // absl, under gRPC's timers) wait that much longer, as a real step
    // back would: README, the nemesis.
    constexpr const char* kJumps[] = {"-1h", "-30d", "+1h", "+30d"};
    const char* jump = kJumps[rng.Next() % (forward_jumps ? 4 : 2)];
    f.what = absl::StrCat("wall clock of ", who, " moved ", jump, " for ",
                          down_ms + 1000, " ms");
    SetClock(c.data_dir(node), jump);
    // libfaketime reads the file once a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms + 1000));
    SetClock(c.data_dir(node), "+0");
  } else if (kind == 6) {
    const uint64_t filled = FillDisk(c, node);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    std::filesystem::remove(c.data_dir(node) + "/filler");
    f.what = absl::StrCat("disk of ", who, " full (", filled >> 20,
                          " MiB more) for ", down_ms, " ms",
                          RestartIfExited(c, node));
  } else {
    const bool both = kind == 3;
    f.what = absl::StrCat(both ? "cut off " : "cut what it sends: ", who,
                          ", for ", down_ms, " ms");
    SetLinks(links, node, both, /*cut=*/true);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    SetLinks(links, node, both, /*cut=*/false);
  }
  f.end_us = Since(t0);
  return f;
}

// Every node reaches each peer through a proxy of that link (before the
// nodes start).
Links RouteThroughProxies(LocalCluster& c) {
  Links links;
  for (int from = 1; from <= c.size(); ++from) {
    for (int to = 1; to <= c.size(); ++to) {
      if (from == to) continue;
      const std::string& peer = c.PeerEndpoint(to);
      auto proxy = std::make_unique<LinkProxy>(
          std::stoi(peer.substr(peer.rfind(':') + 1)));
      Check(proxy->port() > 0, "a link's proxy listens");
      c.SetPeerRoute(from, to, proxy->address());
      links[{from, to}] = std::move(proxy);
    }
  }
  return links;
}

// The longest stretch in [from, to] with no successful write (`oks`
// sorted), in ms.
uint64_t LongestGapMs(const std::vector<uint64_t>& oks, uint64_t from,
                      uint64_t to) {
  uint64_t last = from, longest = 0;
  for (auto it = std::lower_bound(oks.begin(), oks.end(), from);
       it != oks.end() && *it <= to; ++it) {
    longest = std::max(longest, *it - last);
    last = *it;
  }
  return std::max(longest, to - last) / 1000;
}

}  // namespace

std::vector<std::string> NemesisNodeEnv(const std::string& data_dir) {
  if (!std::filesystem::exists(kFaketime)) return {};
  return {absl::StrCat("LD_PRELOAD=", kFaketime),
          "FAKETIME_TIMESTAMP_FILE=" + ClockFile(data_dir),
          "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_CACHE_DURATION=1"};
}

void Nemesis(LocalCluster& c, const NemesisOptions& o) {
  Links links = RouteThroughProxies(c);
  const bool clocks = !NemesisNodeEnv(c.data_dir(1)).empty();
  for (int id = 1; id <= c.size() && clocks; ++id) {
    SetClock(c.data_dir(id), "+0");
  }
  NodeDisks disks(c);
  Log(absl::StrCat(
      "nemesis: clock jumps ",
      clocks ? "on" : absl::StrCat("off (no ", kFaketime, ")"), ", full disks ",
      disks.ok() ? "on" : absl::StrCat("off (", disks.why_not(), ")")));
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  Ok(c.client().Execute(
         Sql("CREATE TABLE kv(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")),
     "create kv");
  Ok(c.client().Execute(
         Sql("CREATE TABLE bank(id INTEGER PRIMARY KEY, balance INTEGER)")),
     "create bank");
  Ok(c.client().Execute(
         Sql("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER)")),
     "create counter");
  Ok(c.client().Execute(Sql("INSERT INTO counter VALUES (1, 0)")),
     "start the counter");
  for (int a = 1; a <= o.accounts; ++a) {
    Ok(c.client().Execute(Sql("INSERT INTO bank VALUES (?, ?)", {a, kBalance})),
       "open an account");
  }
  Log(absl::StrCat("nemesis: seed ", o.seed, ", ", o.seconds, " s, ", o.clients,
                   " clients, ", c.size(), " nodes"));
  const auto t0 = Clock::now();
  std::atomic<bool> stop{false};
  std::vector<ClientLog> logs(static_cast<size_t>(o.clients));
  std::vector<std::thread> clients;
  for (int i = 0; i < o.clients; ++i) {
    clients.emplace_back(RunClient, std::ref(c), std::cref(o), i + 1, t0,
                         std::cref(stop), &logs[static_cast<size_t>(i)]);
  }
  core::Prng rng(o.seed);
  std::vector<Fault> faults;
  const auto faults_end = t0 + std::chrono::seconds(o.seconds);
  try {
    while (Clock::now() < faults_end) {
      // Quiet between faults: 1-3 s.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(1000 + rng.Next() % 2000));
      if (Clock::now() >= faults_end) break;
      faults.push_back(RunFault(c, links, rng, t0, clocks, disks.ok(),
                                o.forward_clock_jumps));
      Log("nemesis: " + faults.back().what);
    }
    // The clients go on for a while after the last fault, so that every
    // fault's unavailability is seen to end.
    std::this_thread::sleep_for(std::chrono::seconds(3));
  } catch (...) {
    stop.store(true);
    for (std::thread& t : clients) t.join();
    throw;
  }
  stop.store(true);
  for (std::thread& t : clients) t.join();
  const uint64_t end_us = Since(t0);

  // Gather the histories.
  std::map<uint64_t, std::vector<sim::RegisterOp>> by_key;
  std::vector<uint64_t> oks;
  ClientLog all;
  for (ClientLog& l : logs) {
    for (auto& [key, op] : l.ops) by_key[key].push_back(op);
    oks.insert(oks.end(), l.write_oks.begin(), l.write_oks.end());
    all.writes_ok += l.writes_ok;
    all.writes_unknown += l.writes_unknown;
    all.writes_refused += l.writes_refused;
    all.reads_ok += l.reads_ok;
    all.reads_failed += l.reads_failed;
    all.transfers_ok += l.transfers_ok;
    all.transfers_unknown += l.transfers_unknown;
    all.totals_read += l.totals_read;
    all.increments_ok += l.increments_ok;
    all.increments_unknown += l.increments_unknown;
    all.anomalies.insert(all.anomalies.end(), l.anomalies.begin(),
                         l.anomalies.end());
  }
  std::sort(oks.begin(), oks.end());
  Log(absl::StrCat(
      "nemesis: acknowledged ", all.writes_ok, " writes, ", all.reads_ok,
      " linearizable reads, ", all.transfers_ok, " transfers, ",
      all.totals_read, " totals, ", all.increments_ok, " increments; ",
      all.writes_unknown + all.transfers_unknown + all.increments_unknown,
      " outcomes unknown, ", all.writes_refused,
      " writes refused (nothing "
      "written), ",
      all.reads_failed, " reads failed"));
  // Each fault's window: from its start until 2 s after its node was
  // back, or the next fault.
  for (size_t i = 0; i < faults.size(); ++i) {
    const Fault& f = faults[i];
    uint64_t to = f.end_us + 2'000'000;
    if (i + 1 < faults.size()) to = std::min(to, faults[i + 1].start_us);
    Log(absl::StrCat("nemesis: ", f.what, ": longest without a write ",
                     LongestGapMs(oks, f.start_us, to), " ms"));
  }
  Log(absl::StrCat("nemesis: longest without a write over the run ",
                   LongestGapMs(oks, 0, end_us), " ms"));

  // The replicas agree, and hold the total.
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  const int64_t total = CountOnEveryNode(
      c, c.size(), "SELECT sum(balance) FROM bank", "about the accounts");
  if (total != static_cast<int64_t>(o.accounts) * kBalance) {
    all.anomalies.push_back(absl::StrCat("the accounts hold ", total));
  }
  const int64_t counted = CountOnEveryNode(
      c, c.size(), "SELECT n FROM counter WHERE id = 1", "about the counter");
  if (counted < all.increments_ok ||
      counted > all.increments_ok + all.increments_unknown) {
    all.anomalies.push_back(
        absl::StrCat("the counter holds ", counted, " after ",
                     all.increments_ok, " increments acknowledged and ",
                     all.increments_unknown, " of unknown outcome"));
  }
  const sim::HistoryReport report = sim::CheckHistory(by_key, kMaxStepsPerKey);
  Log(absl::StrCat(
      "nemesis: linearizability of ", report.operations,
      " register operations: ", sim::CheckResultName(report.result),
      report.result == sim::CheckResult::kOk
          ? ""
          : absl::StrCat(" (key ", report.key, ")")));
  if (report.result != sim::CheckResult::kOk) {
    all.anomalies.push_back(absl::StrCat("key ", report.key, "'s history is ",
                                         sim::CheckResultName(report.result)));
  }
  Log(absl::StrCat("nemesis: ", all.anomalies.size(), " anomalies"));
  for (const std::string& a : all.anomalies) Log("  " + a);
  Check(all.anomalies.empty(), "the nemesis found anomalies");
  Check(all.writes_ok > 0 && all.reads_ok > 0 && !faults.empty(),
        "the run did nothing to check");
}

}  // namespace raftsql::verify

namespace raftsql::verify {

void CutOffLeader(LocalCluster& c) {
  Links links = RouteThroughProxies(c);
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  Ok(c.client().Execute(Sql("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")),
     "create");
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  // A write under a session of its own, so that it can be retried as is.
  v1::ExecuteRequest write = Sql("INSERT INTO t VALUES (1, 'once')");
  write.set_session_id(0x5e55);
  write.set_sequence(1);
  net::Client pinned = Pinned(c, leader);
  SetLinks(links, leader, /*both=*/true, /*cut=*/true);
  const auto sent = Clock::now();
  const absl::Status answer = pinned.Execute(write).status();
  const int64_t answered_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent)
          .count();
  Log(absl::StrCat("the cut-off leader answered in ", answered_ms,
                   " ms: ", answer.ToString()));
  // It steps down once it has not heard a majority for an election
  // timeout (200-400 ms); the request's own bound is 4 s.
  Check(absl::IsUnknown(answer), "a write to a cut-off leader answered " +
                                     answer.ToString() +
                                     ", not outcome unknown");
  Check(answered_ms < 2'000, "the cut-off leader held the write until " +
                                 std::to_string(answered_ms) + " ms");
  // The retry, under the same session, through the others.
  std::vector<std::string> others;
  for (int id = 1; id <= c.size(); ++id) {
    if (id != leader) others.push_back(c.Endpoint(id));
  }
  net::Client rest(others, c.ClientOptionsFor());
  Ok(rest.Execute(write), "the retry through the others");
  SetLinks(links, leader, /*both=*/true, /*cut=*/false);
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  Check(CountOnEveryNode(c, c.size(), "SELECT count(*) FROM t",
                         "about the retried write") == 1,
        "the retried write applied other than once");
  Log("the write applied once, on every node");
}

}  // namespace raftsql::verify
