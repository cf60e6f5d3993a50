// raftsql-edge-agent: reads sensors into a local store-and-forward buffer,
// uploads it to the hub over one authenticated session, and runs the hub's
// commands (DESIGN.md §6). Stops on SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "edge/agent.h"

ABSL_FLAG(std::string, hubs, "127.0.0.1:7001",
          "The hub's nodes, host:port,... (tried in turn; any node serves "
          "a device).");
ABSL_FLAG(std::string, device, "",
          "This device's id (a hub user with the "
          "device permission).");
ABSL_FLAG(std::string, token_file, "",
          "A file holding the device's token (its password). Without it, "
          "the environment variable RAFTSQL_EDGE_TOKEN.");
ABSL_FLAG(std::string, ca_file, "",
          "The hub's CA certificate (PEM): TLS. Without it, plaintext (a "
          "trusted network only).");
ABSL_FLAG(std::string, cert_file, "",
          "This device's certificate (PEM), if it authenticates by one (its "
          "name is the device id; no token is needed then).");
ABSL_FLAG(std::string, key_file, "", "Its key (PEM).");
ABSL_FLAG(std::string, store, "edge.db",
          "The local store (a SQLite file, created if missing; a new file "
          "is a new incarnation).");
ABSL_FLAG(uint64_t, max_buffer_bytes, uint64_t{64} << 20,
          "Bytes of readings the store holds at most.");
ABSL_FLAG(int64_t, max_age_s, 7 * 24 * 3600,
          "Readings older than this (since stored) are dropped, counted.");
ABSL_FLAG(std::string, full_policy, "drop-oldest",
          "When the buffer is full: drop-oldest (keep the newest readings) "
          "or reject-new (keep the oldest). Either is counted.");
ABSL_FLAG(bool, sync_every_commit, false,
          "Fsync the store at every commit (else a power cut may lose the "
          "last readings, never corrupt the store).");
ABSL_FLAG(std::string, source, "sim",
          "sim (simulated sensors), stdin, or csv:<path>; CSV lines are "
          "sensor,value[,unit[,device_time_ms]]. A CSV file is read from "
          "its start at every run: its lines become new readings each "
          "time (what was already read waits in the store).");
ABSL_FLAG(int, sim_sensors, 1, "Simulated sensors (sensor-0, sensor-1...).");
ABSL_FLAG(int64_t, sim_period_ms, 1000, "A simulated sensor's period.");
ABSL_FLAG(double, sim_fault_rate, 0.001,
          "Chance per reading of a spike, a dropout, and (half) stuck-at.");
ABSL_FLAG(uint64_t, seed, 1,
          "Seeds the simulated sensors and the back-off's jitter.");
ABSL_FLAG(int64_t, sample_ms, 100,
          "How often the sources are read. This and the next two are "
          "defaults: the twin's desired sample_ms (10 to 3600000), "
          "batch_max and batch_ms (0 to 600000) override them, and the "
          "agent reports what it runs with and what it refused.");
ABSL_FLAG(uint64_t, batch_max, 100, "Readings per upload, 1 to 1000.");
ABSL_FLAG(int64_t, batch_ms, 200,
          "An upload leaves once its oldest reading waited this long.");
ABSL_FLAG(uint64_t, window, 4, "Uploads in flight, 1 to 8.");
ABSL_FLAG(int64_t, backoff_min_ms, 100,
          "The first reconnection back-off (doubles, with full jitter).");
ABSL_FLAG(int64_t, backoff_max_ms, 10000, "The longest back-off.");
ABSL_FLAG(bool, exit_when_drained, false,
          "With a finite source (stdin, csv): exit once everything it "
          "produced is acknowledged.");
ABSL_FLAG(int64_t, stats_every_s, 10, "Print counters this often (0: never).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "raftsql-edge-agent --hubs=host:port,... --device=ID "
      "[--token_file=F] [--store=edge.db] [--source=sim|stdin|csv:PATH]");
  absl::ParseCommandLine(argc, argv);
  using namespace raftsql::edge;  // NOLINT: a main.

  AgentOptions o;
  o.hubs = absl::StrSplit(absl::GetFlag(FLAGS_hubs), ',', absl::SkipEmpty());
  o.device = absl::GetFlag(FLAGS_device);
  if (absl::Status s = ValidateName("--device", o.device, 64); !s.ok()) {
    std::fprintf(stderr, "edge: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token_file.empty()) {
    std::ifstream f(token_file);
    if (!std::getline(f, o.token)) {
      std::fprintf(stderr, "edge: cannot read %s\n", token_file.c_str());
      return 2;
    }
  } else if (const char* t = std::getenv("RAFTSQL_EDGE_TOKEN")) {
    o.token = t;
  }
  if (o.token.empty() && absl::GetFlag(FLAGS_cert_file).empty()) {
    std::fprintf(stderr,
                 "edge: no token (--token_file or RAFTSQL_EDGE_TOKEN) and no "
                 "device certificate (--cert_file)\n");
    return 2;
  }
  if (!absl::GetFlag(FLAGS_ca_file).empty()) {
    auto tls = raftsql::net::LoadTls(absl::GetFlag(FLAGS_ca_file),
                                     absl::GetFlag(FLAGS_cert_file),
                                     absl::GetFlag(FLAGS_key_file));
    if (!tls.ok()) {
      std::fprintf(stderr, "edge: %s\n", tls.status().ToString().c_str());
      return 2;
    }
    o.tls = *tls;
  }
  o.core.batch_max = absl::GetFlag(FLAGS_batch_max);
  o.core.window = absl::GetFlag(FLAGS_window);
  o.core.batch_ms = absl::GetFlag(FLAGS_batch_ms);
  o.core.sample_ms = absl::GetFlag(FLAGS_sample_ms);
  o.core.backoff_min_ms = absl::GetFlag(FLAGS_backoff_min_ms);
  o.core.backoff_max_ms = absl::GetFlag(FLAGS_backoff_max_ms);
  o.core.seed = absl::GetFlag(FLAGS_seed);
  o.stop_when_drained = absl::GetFlag(FLAGS_exit_when_drained);
  if (o.hubs.empty() || o.core.batch_max < 1 ||
      o.core.batch_max > kMaxReadingsPerUpload || o.core.window < 1 ||
      o.core.window > 8 || o.core.batch_ms < 0 || o.core.sample_ms < 1 ||
      o.core.backoff_min_ms < 1 ||
      o.core.backoff_max_ms < o.core.backoff_min_ms) {
    std::fprintf(stderr, "edge: bad flags (see --help)\n");
    return 2;
  }

  StoreOptions so;
  so.path = absl::GetFlag(FLAGS_store);
  so.max_bytes = absl::GetFlag(FLAGS_max_buffer_bytes);
  so.max_age_ms = absl::GetFlag(FLAGS_max_age_s) * 1000;
  so.sync_every_commit = absl::GetFlag(FLAGS_sync_every_commit);
  const std::string policy = absl::GetFlag(FLAGS_full_policy);
  if (policy == "reject-new") {
    so.policy = FullPolicy::kRejectNew;
  } else if (policy != "drop-oldest") {
    std::fprintf(stderr, "edge: --full_policy is drop-oldest or reject-new\n");
    return 2;
  }
  auto store = EdgeStore::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "edge: %s\n", store.status().ToString().c_str());
    return 1;
  }

  std::vector<std::unique_ptr<Source>> sources;
  std::ifstream csv;
  const std::string source = absl::GetFlag(FLAGS_source);
  if (source == "sim") {
    const double rate = absl::GetFlag(FLAGS_sim_fault_rate);
    for (int i = 0; i < absl::GetFlag(FLAGS_sim_sensors); ++i) {
      SimulatedSensorOptions so;
      so.name = "sensor-" + std::to_string(i);
      so.period_ms = absl::GetFlag(FLAGS_sim_period_ms);
      so.spike_chance = rate;
      so.dropout_chance = rate;
      so.stuck_chance = rate / 2;
      sources.push_back(std::make_unique<SimulatedSensor>(
          so, absl::GetFlag(FLAGS_seed) * 1000 + i));
    }
  } else if (source == "stdin") {
    sources.push_back(std::make_unique<CsvSource>(&std::cin));
  } else if (source.rfind("csv:", 0) == 0) {
    csv.open(source.substr(4));
    if (!csv) {
      std::fprintf(stderr, "edge: cannot open %s\n", source.c_str() + 4);
      return 2;
    }
    sources.push_back(std::make_unique<CsvSource>(&csv));
  } else {
    std::fprintf(stderr, "edge: --source is sim, stdin or csv:<path>\n");
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SimulatedActuator actuator;
  Agent agent(o, store->get(), std::move(sources), &actuator);
  std::fprintf(stderr, "edge: device %s, incarnation %s, store %s\n",
               o.device.c_str(), (*store)->incarnation().c_str(),
               so.path.c_str());
  std::thread signal_waiter([&agent, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    agent.Stop();
  });
  signal_waiter.detach();
  std::thread stats;
  const int64_t every = absl::GetFlag(FLAGS_stats_every_s);
  std::atomic<bool> done{false};
  if (every > 0) {
    stats = std::thread([&] {
      while (!done.load()) {
        for (int64_t i = 0; i < every * 10 && !done.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        const AgentStats s = agent.stats();
        std::fprintf(stderr,
                     "edge: sessions %llu, uploads %llu, acked %llu, "
                     "backlog %llu, dropped %llu, commands run %llu\n",
                     static_cast<unsigned long long>(s.sessions),
                     static_cast<unsigned long long>(s.uploads),
                     static_cast<unsigned long long>(s.acked),
                     static_cast<unsigned long long>(s.backlog),
                     static_cast<unsigned long long>(s.dropped),
                     static_cast<unsigned long long>(s.commands_run));
      }
    });
  }
  agent.Run();
  done = true;
  if (stats.joinable()) stats.join();
  return 0;
}
