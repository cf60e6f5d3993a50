// raftsql_server: one node of a raftsql cluster.
//
//   raftsql_server --id=1 --listen=127.0.0.1:7001
//       --peers=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//       --data-dir=/var/lib/raftsql/1
//
// SIGTERM or SIGINT stops it gracefully (a leader hands over leadership
// first); a restart recovers from --data-dir.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "net/grpc_transport.h"
#include "obs/log.h"
#include "obs/write_trace.h"
#include "server/allocator.h"
#include "server/boot.h"
#include "server/grpc_timer_kick.h"
#include "server/http_frontend.h"
#include "server/raft_server.h"
#include "server/service.h"
#include "tools/flags.h"

ABSL_FLAG(uint64_t, id, 0, "This node's id (> 0, unique in the cluster).");
ABSL_FLAG(std::string, listen, "127.0.0.1:7001",
          "host:port for both clients (DatabaseService) and peers "
          "(PeerService).");
ABSL_FLAG(std::string, http_listen, "",
          "host:port for the HTTP API (rqlite's /db/execute, /db/query, "
          "/db/request, /db/backup, /db/load, /status, /nodes, /readyz; "
          "/livez, /metrics): over TLS with the node's certificate unless "
          "--insecure. Empty: no HTTP API.");
ABSL_FLAG(int, http_threads, 64,
          "HTTP connections served at once (each holds a thread while it "
          "waits for its outcome, and a keep-alive connection holds it "
          "between its requests).");
ABSL_FLAG(int, http_max_queued_connections, 256,
          "HTTP connections waiting for a thread; beyond, new connections "
          "wait in the kernel's listen backlog.");
ABSL_FLAG(uint64_t, http_max_load_bytes, uint64_t{16} << 30,
          "The largest body POST /db/load takes (it goes to a file in "
          "--data_dir while it arrives).");
ABSL_FLAG(uint64_t, ready_max_lag, 1000,
          "Not ready (/readyz 503, gRPC health NOT_SERVING) while this node "
          "has applied more than this many entries fewer than it knows "
          "committed.");
ABSL_FLAG(std::string, log_level, "info",
          "The least severe log events written: debug, info, warn, error.");
ABSL_FLAG(std::string, log_format, "text",
          "Log lines as text, or as one JSON object each (json): ts, "
          "level, event (start, election, membership, snapshot, vacuum, "
          "slow_loop, slow_request, divergence, fatal, stop, ...), msg and "
          "the event's fields.");
ABSL_FLAG(std::string, trace_writes, "",
          "Benchmarks only: keep, for each log index, when it passed each "
          "stage of a write (received, proposed, log write, append sent "
          "and received, ack, commit, apply, answer; obs/write_trace.h) and "
          "write them to this file (relative: under --data_dir) at a "
          "graceful stop. At most 262,144 records.");
ABSL_FLAG(int, slow_request_ms, 1000,
          "Requests (gRPC and HTTP) slower than this are logged "
          "(slow_request, warn); 0: none.");
ABSL_FLAG(std::string, certs_dir, "",
          "Directory with the cluster CA (ca.crt) and this node's certificate "
          "and key (node-<id>.crt, node-<id>.key), as raftsql_certs makes "
          "them: mutual TLS between nodes, TLS for clients.");
ABSL_FLAG(std::string, ca_cert, "", "The cluster CA (instead of --certs_dir).");
ABSL_FLAG(std::string, cert, "",
          "This node's certificate, CN node-<id> (instead of --certs_dir).");
ABSL_FLAG(std::string, key, "", "This node's key (instead of --certs_dir).");
ABSL_FLAG(bool, insecure, false,
          "Plaintext, no certificates: anyone who reaches the port can speak "
          "as a peer. Only on a network every party of which is trusted.");
ABSL_FLAG(std::string, peer_transport, "grpc",
          "what carries Raft messages between nodes: grpc (PeerService "
          "streams) or stream (TCP connections read and written by the Raft "
          "loop itself, fewer thread hand-offs; needs --peer_listen). Both "
          "are mutual TLS. Every node of a cluster runs the same one.");
ABSL_FLAG(std::string, peer_listen, "",
          "host:port for peers only (PeerService), apart from --listen so "
          "that it can be firewalled; --peers and --join's AddNode then name "
          "peer addresses. Empty: peers use --listen.");
ABSL_FLAG(std::string, peers, "",
          "The initial cluster, this node included, as "
          "id=host:port,id=host:port,... Used to bootstrap a new cluster; a "
          "restarted node recovers its members from --data-dir.");
ABSL_FLAG(std::string, join, "",
          "host:port of a running member: join that cluster (as a learner, "
          "promoted to voter once caught up) instead of bootstrapping.");
ABSL_FLAG(std::string, boot_from, "",
          "A SQLite file or SQL text (a .dump) that a new single-node "
          "cluster (--peers with this node alone, an empty data directory) "
          "loads through its Raft log before it serves clients; more nodes "
          "--join it afterwards. Refused for a directory that holds state.");
ABSL_FLAG(bool, non_voter, false,
          "With --join: join as a learner that stays one (a read-only "
          "node, rqlite's -raft-non-voter): it replicates everything and "
          "serves reads (level none locally; linearizable through the "
          "leader's ReadIndex), never votes or counts toward a commit.");
ABSL_FLAG(std::string, data_dir, "",
          "Directory for the RocksDB log (log/), the SQLite database "
          "(db.sqlite) and the peer address book; created if missing.");
ABSL_FLAG(int, tick_ms, 20, "Raft tick interval in milliseconds.");
ABSL_FLAG(int, election_ticks, 10,
          "Election timeout in ticks (randomized in [n, 2n)).");
ABSL_FLAG(int, heartbeat_ticks, 2, "Leader heartbeat interval in ticks.");
ABSL_FLAG(int, leader_wait_ms, 3000,
          "With no leader, how long writes and linearizable reads wait for "
          "an election before failing with UNAVAILABLE \"no leader\".");
ABSL_FLAG(int, request_timeout_ms, 5000,
          "How long a write or read waits for its outcome before failing "
          "with DEADLINE_EXCEEDED (outcome unknown for a write).");
ABSL_FLAG(int, pause_before_commit_ms, 0,
          "Fault injection for crash tests: on the leader, after entries are "
          "replicated and committed, wait this long before applying and "
          "answering them.");
ABSL_FLAG(bool, forward_writes, true,
          "Forward writes received by a follower to the leader; with false, "
          "answer FAILED_PRECONDITION (not leader) with the leader's address "
          "in the raftsql-leader trailer.");
ABSL_FLAG(uint64_t, max_request_bytes, 4 << 20,
          "Largest Execute request accepted (RESOURCE_EXHAUSTED beyond).");
ABSL_FLAG(int, query_timeout_ms, 10000,
          "A read (Query, GetVersion) is interrupted after this long, or at "
          "the client's deadline or cancellation if sooner "
          "(DEADLINE_EXCEEDED / CANCELLED).");
ABSL_FLAG(int, read_connections, 4,
          "SQLite read connections (and reader threads): this many reads run "
          "at once; a slow read holds one.");
ABSL_FLAG(uint64_t, max_result_bytes, 48 << 20,
          "Largest Query result (RESOURCE_EXHAUSTED beyond, checked while "
          "rows are read).");
ABSL_FLAG(uint64_t, grpc_memory_bytes, uint64_t{1} << 30,
          "Memory gRPC may hold for all connections together (buffers, calls "
          "in flight); beyond it gRPC sheds load.");
ABSL_FLAG(int, divergence_check_ms, 5000,
          "How often this node compares its divergence checkpoints with its "
          "peers' (0: never); a replica outvoted there stops serving reads.");
ABSL_FLAG(uint64_t, divergence_checkpoint_entries, 1000,
          "Entries between divergence checkpoints (the same on every node).");
ABSL_FLAG(bool, incremental_vacuum, false,
          "A database this node creates returns free pages to the file "
          "system, 256 per batch (auto_vacuum = INCREMENTAL; it costs apply "
          "throughput: see the README). Off: free pages are reused.");
ABSL_FLAG(uint64_t, snapshot_entries, 10000,
          "Compact the log every this many applied entries (once the "
          "database file is synced, on a thread of its own; nothing is "
          "copied).");
ABSL_FLAG(int, slow_loop_ms, 100,
          "Log a Raft-loop iteration that takes this long, with where its "
          "time went (at most one line a second).");
ABSL_FLAG(uint64_t, compaction_keeps_entries, 5000,
          "Applied entries the log keeps at a compaction (at most 64 MiB of "
          "them), so that a follower a little behind catches up from the "
          "log, not from an image of the whole database.");
ABSL_FLAG(uint64_t, snapshot_log_bytes, 32 << 20,
          "... or once the entries applied since the last compaction hold "
          "this many bytes (the log store keeps entries in memory too: this "
          "bounds that memory; 0: no byte bound).");
ABSL_FLAG(uint64_t, max_snapshot_bytes, uint64_t{256} << 30,
          "The largest snapshot image this node accepts from a leader (it "
          "is written to disk as it arrives).");
ABSL_FLAG(uint64_t, snapshot_bytes_per_second, 0,
          "Snapshot bytes a leader sends per second to followers catching "
          "up, all together (0: no limit).");
ABSL_FLAG(uint64_t, change_log_bytes, uint64_t{256} << 20,
          "The committed row changes Watch serves are kept beside the "
          "database (<data_dir>/db.sqlite.changes/), at most this many "
          "bytes; older ones are dropped (a watcher behind them gets "
          "OUT_OF_RANGE). 0: none kept, Watch unavailable.");
ABSL_FLAG(int, decision_interval_ms, 100,
          "The leader evaluates the rules (ai_rules) over what changed this "
          "often; 0: no decisions on this node.");
ABSL_FLAG(std::string, model_dir, "",
          "Where the hub's model files are, <name>.gguf, each used only if "
          "its SHA-256 is the one ai_models names (default: "
          "<data_dir>/models).");
ABSL_FLAG(uint64_t, vacuum_bytes_per_second, 64 << 20,
          "Bytes per second a VACUUM's copy of the database writes at most "
          "(each node rebuilds its file in the background; 0: no limit).");
ABSL_FLAG(bool, vacuum_handoff, false,
          "A leader whose VACUUM copy has caught up hands leadership to the "
          "most up-to-date voter before it swaps the copy in. By default it "
          "swaps as leader: the swap runs off its loop, which keeps "
          "heartbeating, but the answers to writes wait for it.");
ABSL_FLAG(uint64_t, snapshot_chunks_in_flight, 16,
          "1 MiB snapshot chunks a leader keeps in flight to one follower "
          "(memory: about as many MiB on the leader while it sends).");
ABSL_FLAG(bool, announce_commit_at_tick, false,
          "A leader tells followers that lack no entries of a new commit "
          "index at the next tick (or with the next entries or a "
          "heartbeat) instead of at once: one message to each follower "
          "fewer per write at low concurrency; followers apply up to a "
          "tick later when writes pause.");
ABSL_FLAG(int64_t, edge_command_lock_ms, 30'000,
          "A command delivered to an edge and unanswered this long is "
          "delivered again (while it has attempts left).");
ABSL_FLAG(int64_t, edge_readings_max_age_s, 0,
          "Edge readings stored longer than this are deleted by the "
          "leader, in bounded batches (0: kept).");
ABSL_FLAG(int64_t, edge_readings_max_per_device, 0,
          "Each device keeps its newest this many readings (counted by "
          "sequence, over its incarnations); the leader deletes older ones "
          "in bounded steps (0: kept).");
ABSL_FLAG(int64_t, edge_sweep_ms, 1000,
          "How often edge sessions look for commands whose lock ran out, "
          "and the leader sweeps expired commands and old readings.");
ABSL_FLAG(uint64_t, edge_max_sessions, 10'000,
          "Edge sessions one node serves at once.");
ABSL_FLAG(int64_t, edge_no_leader_ms, 3000,
          "A node that knows no leader this long ends its edge sessions, so "
          "that their devices go to another node.");

namespace {

bool ParsePeers(const std::string& text, std::map<uint64_t, std::string>* out) {
  if (text.empty()) return true;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    uint64_t id = 0;
    if (!absl::SimpleAtoi(kv.first, &id) || id == 0 || kv.second.empty()) {
      return false;
    }
    (*out)[id] = kv.second;
  }
  return true;
}

// TLS from --certs_dir or --ca_cert/--cert/--key; none only with --insecure.
absl::Status LoadNodeTls(uint64_t id, raftsql::net::Tls* out) {
  const std::string dir = absl::GetFlag(FLAGS_certs_dir);
  const std::string ca = absl::GetFlag(FLAGS_ca_cert);
  const bool insecure = absl::GetFlag(FLAGS_insecure);
  if (insecure) {
    if (!dir.empty() || !ca.empty()) {
      return absl::InvalidArgumentError(
          "--insecure and certificates exclude each other");
    }
    return absl::OkStatus();
  }
  if (dir.empty() == ca.empty()) {
    return absl::InvalidArgumentError(
        "refusing to run without TLS: give --certs_dir (raftsql_certs local "
        "--dir=certs makes one) or --ca_cert/--cert/--key, or --insecure on "
        "a trusted network");
  }
  absl::StatusOr<raftsql::net::Tls> tls =
      dir.empty() ? raftsql::net::LoadTls(ca, absl::GetFlag(FLAGS_cert),
                                          absl::GetFlag(FLAGS_key))
                  : raftsql::net::LoadTlsDir(dir, raftsql::net::NodeName(id));
  if (!tls.ok()) return tls.status();
  if (tls->cert_pem.empty()) {
    return absl::InvalidArgumentError("a node needs its certificate and key");
  }
  *out = std::move(*tls);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  raftsql::server::SetUpAllocator();
  // Whichever transport carries Raft's messages: clients, forwarding and
  // the divergence checks are gRPC's (the stream transport alone left
  // Abseil's deadlock detector on, 2% of all CPU under reads).
  raftsql::net::PrepareGrpc();
  // RAFTSQL_<FLAG> in the environment sets --<flag> (RAFTSQL_DATA_DIR:
  // --data_dir), before the command line, which wins.
  raftsql::tools::ParseFlags(
      argc, argv,
      "one node of a raftsql cluster (Raft-replicated SQLite). Flags may be "
      "spelled with - or _, given in a file (--flagfile=FILE, one --flag=value "
      "a line, as /etc/raftsql/raftsql.flags) or in the environment "
      "(RAFTSQL_DATA_DIR=... for --data_dir; the command line wins).\n"
      "  raftsql_server --id=1 --listen=127.0.0.1:7001 "
      "--peers=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 "
      "--data-dir=/tmp/raftsql/1",
      "RAFTSQL");

  raftsql::server::ServerOptions o;
  o.id = absl::GetFlag(FLAGS_id);
  o.listen = absl::GetFlag(FLAGS_listen);
  o.peer_listen = absl::GetFlag(FLAGS_peer_listen);
  o.peer_transport = absl::GetFlag(FLAGS_peer_transport);
  if (absl::Status log = raftsql::obs::SetLog(absl::GetFlag(FLAGS_log_level),
                                              absl::GetFlag(FLAGS_log_format));
      !log.ok()) {
    std::fprintf(stderr, "raftsql: %s\n", std::string(log.message()).c_str());
    return 2;
  }
  o.slow_request_ms = absl::GetFlag(FLAGS_slow_request_ms);
  o.join = absl::GetFlag(FLAGS_join);
  o.non_voter = absl::GetFlag(FLAGS_non_voter);
  if (o.non_voter && o.join.empty()) {
    std::fprintf(stderr, "raftsql: --non_voter needs --join\n");
    return 2;
  }
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (const std::string trace = absl::GetFlag(FLAGS_trace_writes);
      !trace.empty()) {
    raftsql::obs::EnableWriteTrace(
        trace.front() == '/' ? trace : o.data_dir + "/" + trace);
  }
  o.tick_ms = absl::GetFlag(FLAGS_tick_ms);
  o.election_ticks = absl::GetFlag(FLAGS_election_ticks);
  o.heartbeat_ticks = absl::GetFlag(FLAGS_heartbeat_ticks);
  o.leader_wait_ms = absl::GetFlag(FLAGS_leader_wait_ms);
  o.request_timeout_ms = absl::GetFlag(FLAGS_request_timeout_ms);
  o.pause_before_commit_ms = absl::GetFlag(FLAGS_pause_before_commit_ms);
  o.forward_writes = absl::GetFlag(FLAGS_forward_writes);
  o.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  o.snapshot_entries = absl::GetFlag(FLAGS_snapshot_entries);
  o.slow_loop_ms = absl::GetFlag(FLAGS_slow_loop_ms);
  o.snapshot_log_bytes = absl::GetFlag(FLAGS_snapshot_log_bytes);
  o.compaction_keeps_entries = absl::GetFlag(FLAGS_compaction_keeps_entries);
  o.max_snapshot_bytes = absl::GetFlag(FLAGS_max_snapshot_bytes);
  o.snapshot_bytes_per_second = absl::GetFlag(FLAGS_snapshot_bytes_per_second);
  o.vacuum_bytes_per_second = absl::GetFlag(FLAGS_vacuum_bytes_per_second);
  o.change_log_bytes = absl::GetFlag(FLAGS_change_log_bytes);
  o.decision_interval_ms = absl::GetFlag(FLAGS_decision_interval_ms);
  o.model_dir = absl::GetFlag(FLAGS_model_dir);
  o.vacuum_handoff = absl::GetFlag(FLAGS_vacuum_handoff);
  o.snapshot_chunks_in_flight = absl::GetFlag(FLAGS_snapshot_chunks_in_flight);
  o.announce_commit_at_tick = absl::GetFlag(FLAGS_announce_commit_at_tick);
  o.divergence_check_ms = absl::GetFlag(FLAGS_divergence_check_ms);
  o.incremental_vacuum = absl::GetFlag(FLAGS_incremental_vacuum);
  o.divergence_checkpoint_entries =
      absl::GetFlag(FLAGS_divergence_checkpoint_entries);
  o.ready_max_lag = absl::GetFlag(FLAGS_ready_max_lag);
  o.query_timeout_ms = absl::GetFlag(FLAGS_query_timeout_ms);
  o.read_connections = absl::GetFlag(FLAGS_read_connections);
  o.max_result_bytes = absl::GetFlag(FLAGS_max_result_bytes);
  o.grpc_memory_bytes = absl::GetFlag(FLAGS_grpc_memory_bytes);
  o.edge.command_lock_ms = absl::GetFlag(FLAGS_edge_command_lock_ms);
  o.edge.readings_max_age_ms =
      absl::GetFlag(FLAGS_edge_readings_max_age_s) * 1000;
  o.edge.readings_max_per_device =
      absl::GetFlag(FLAGS_edge_readings_max_per_device);
  o.edge.sweep_ms = absl::GetFlag(FLAGS_edge_sweep_ms);
  o.edge.max_sessions = absl::GetFlag(FLAGS_edge_max_sessions);
  o.edge.no_leader_ms = absl::GetFlag(FLAGS_edge_no_leader_ms);
  if (o.edge.command_lock_ms < 1 || o.edge.readings_max_age_ms < 0 ||
      o.edge.readings_max_per_device < 0 || o.edge.sweep_ms < 10 ||
      o.edge.max_sessions < 1 || o.edge.no_leader_ms < 1) {
    std::fprintf(stderr,
                 "raftsql: need --edge_command_lock_ms >= 1, "
                 "--edge_readings_max_age_s >= 0, --edge_sweep_ms >= 10, "
                 "--edge_max_sessions >= 1 and --edge_no_leader_ms >= 1\n");
    return 2;
  }
  if (o.query_timeout_ms <= 0 || o.read_connections <= 0 ||
      o.read_connections > 64 || o.max_result_bytes == 0 ||
      o.max_result_bytes > (60u << 20)) {
    std::fprintf(stderr,
                 "raftsql: need --query-timeout-ms > 0, --read-connections in "
                 "[1, 64] and --max-result-bytes in [1, 60 MiB] (gRPC sends "
                 "at most 64 MiB)\n");
    return 2;
  }
  absl::Status tls = LoadNodeTls(o.id, &o.tls);
  if (!tls.ok()) {
    std::fprintf(stderr, "raftsql: %s\n", std::string(tls.message()).c_str());
    return 2;
  }
  if (!ParsePeers(absl::GetFlag(FLAGS_peers), &o.peers)) {
    std::fprintf(stderr, "raftsql: bad --peers (want id=host:port,...)\n");
    return 2;
  }
  if (o.snapshot_chunks_in_flight == 0 || o.snapshot_chunks_in_flight > 64) {
    std::fprintf(stderr,
                 "raftsql: need --snapshot_chunks_in_flight in [1, 64]\n");
    return 2;
  }
  if (o.tick_ms <= 0 || o.heartbeat_ticks <= 0 ||
      o.election_ticks <= o.heartbeat_ticks) {
    std::fprintf(stderr,
                 "raftsql: need --tick-ms > 0 and --election-ticks > "
                 "--heartbeat-ticks > 0\n");
    return 2;
  }

  const std::string boot_from = absl::GetFlag(FLAGS_boot_from);
  if (!boot_from.empty()) {
    absl::Status bootable = raftsql::server::CheckBootable(o);
    if (!bootable.ok()) {
      std::fprintf(stderr, "raftsql: %s\n",
                   std::string(bootable.message()).c_str());
      return 2;
    }
  }

  // Every thread inherits the blocked signals; main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  o.on_fatal = [](const absl::Status&) {
    // Nothing more may be acknowledged, and nothing flushed could be
    // trusted: exit at once (the reason is on stderr already).
    raftsql::obs::Log(
        raftsql::obs::Level::kError, "fatal",
        absl::StrFormat("exiting (%d) so that a supervisor restarts the node "
                        "from what is durable",
                        raftsql::server::kExitLogStoreFailed));
    std::fflush(stderr);
    std::_Exit(raftsql::server::kExitLogStoreFailed);
  };
  auto node = raftsql::server::RaftServer::Open(o);
  if (!node.ok()) {
    std::fprintf(stderr, "raftsql: %s\n", node.status().ToString().c_str());
    return 1;
  }
  // gRPC's timers go on firing if the wall clock steps (grpc_timer_kick.h).
  raftsql::server::GrpcTimerKick timer_kick;
  if (!boot_from.empty()) {
    // Before any client can see a part of it.
    (*node)->Start();
    const auto began = std::chrono::steady_clock::now();
    auto booted = raftsql::server::BootFromFile(**node, boot_from);
    if (!booted.ok()) {
      raftsql::obs::Log(
          raftsql::obs::Level::kError, "boot",
          absl::StrCat(booted.status().message(),
                       "; remove the data directory before booting again"),
          {{"node", o.id}});
      (*node)->Shutdown();
      return 1;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - began)
                        .count();
    raftsql::obs::Log(
        raftsql::obs::Level::kInfo, "boot",
        absl::StrFormat("booted from %s: %d rows in %d commands (%d "
                        "statements), %d ms",
                        boot_from, booted->rows, booted->commands,
                        booted->statements, ms),
        {{"node", o.id}, {"rows", booted->rows}});
  }
  auto frontend = raftsql::server::GrpcFrontend::Start(node->get());
  if (!frontend.ok()) {
    std::fprintf(stderr, "raftsql: %s\n", frontend.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<raftsql::server::HttpFrontend> http;
  if (const std::string listen = absl::GetFlag(FLAGS_http_listen);
      !listen.empty()) {
    raftsql::server::HttpOptions h;
    h.listen = listen;
    h.threads =
        static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_http_threads)));
    h.max_load_bytes = absl::GetFlag(FLAGS_http_max_load_bytes);
    h.max_queued_connections = static_cast<size_t>(
        std::max(1, absl::GetFlag(FLAGS_http_max_queued_connections)));
    auto started = raftsql::server::HttpFrontend::Start(node->get(), h);
    if (!started.ok()) {
      std::fprintf(stderr, "raftsql: %s\n",
                   started.status().ToString().c_str());
      return 1;
    }
    http = std::move(*started);
  }
  if (boot_from.empty()) (*node)->Start();
  const std::string http_address =
      http != nullptr ? (*node)->http_address() : "";
  raftsql::obs::Log(
      raftsql::obs::Level::kInfo, "start",
      absl::StrFormat("node %d serving on %s%s%s (data in %s, %s malloc)", o.id,
                      o.listen, http != nullptr ? ", HTTP on " : "",
                      http_address, o.data_dir,
                      raftsql::server::AllocatorName()),
      {{"node", o.id},
       {"listen", o.listen},
       {"http", http_address},
       {"allocator", raftsql::server::AllocatorName()}});

  int sig = 0;
  sigwait(&signals, &sig);
  raftsql::obs::Log(
      raftsql::obs::Level::kInfo, "stop",
      absl::StrFormat("node %d got signal %d, stopping", o.id, sig),
      {{"node", o.id}, {"signal", sig}});
  (*node)->Shutdown();  // Hands leadership over while peers still listen.
  if (http != nullptr) http->Shutdown();
  (*frontend)->Shutdown(1000);
  node->reset();
  if (absl::Status traced = raftsql::obs::FlushWriteTrace(); !traced.ok()) {
    std::fprintf(stderr, "raftsql: %s\n",
                 std::string(traced.message()).c_str());
  }
  raftsql::obs::Log(raftsql::obs::Level::kInfo, "stop",
                    absl::StrFormat("node %d stopped", o.id), {{"node", o.id}});
  return 0;
}
