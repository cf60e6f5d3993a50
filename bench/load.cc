// load: a gRPC load generator for raftsql. Prints ops/s and latency
// percentiles (p50/p90/p99/p999).
//
//   bazel run -c opt //bench:load -- --start=3 --concurrency=16 --ops=20000
//   bazel run -c opt //bench:load -- --nodes=127.0.0.1:7001,... --mix=select
//
// --start=N starts a durable N-node cluster on 127.0.0.1 in a temporary
// directory (stopped at exit; flags after "--" go to its servers); --nodes
// uses a running one. Every run is bounded by --ops and --max_seconds.
// Flags: --help; - or _; --flagfile=FILE (tools/flags.h).
//
// Mixes: insert (single-row INSERT), batch (100-row INSERT in one command),
// select (point SELECT, consistency NONE), select_lin (point SELECT,
// LINEARIZABLE), or weights such as insert=8,select_lin=2.
//
// --stream=N sends the writes over N pipelined ExecuteStream streams (the
// virtual clients share them; each still waits for its own answer before
// its next write) instead of one unary Execute call per write.
//
// --breakdown (with --start): the nodes trace each write's stages
// (--trace_writes), and after the run the generator prints where a write's
// time went, stage by stage (bench/breakdown.h), beside the physical floor
// measured on this machine: fdatasync in the cluster's directory and a
// unary round trip (Status) to the leader.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/breakdown.h"
#include "bench/http_load.h"
#include "bench/process_cpu.h"
#include "net/client.h"
#include "net/execute_stream_client.h"
#include "net/grpc_transport.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(int, start, 0,
          "start a durable cluster of this many nodes on 127.0.0.1 (its "
          "servers' flags after --)");
ABSL_FLAG(std::vector<std::string>, nodes, {},
          "or drive a running cluster: host:port,...");
ABSL_FLAG(std::vector<std::string>, etcd, {},
          "or etcd: single-key Puts to its v3 KV service at host:port,... "
          "(bench/compare_etcd.sh)");
ABSL_FLAG(int, concurrency, 1, "virtual clients, each one request at a time");
ABSL_FLAG(int64_t, ops, 20'000, "requests in all");
ABSL_FLAG(double, max_seconds, 30, "stop after this long whatever --ops");
ABSL_FLAG(std::string, mix, "insert",
          "name=weight,... of insert (one row), batch (100 rows), select "
          "(NONE) and select_lin (linearizable); over HTTP also "
          "select_weak and select_strong (rqlite's levels)");
ABSL_FLAG(bool, sessions, false,
          "stamp writes with a client session (exactly-once)");
ABSL_FLAG(int, stream, 0,
          "writes over this many pipelined ExecuteStream streams instead of "
          "one unary call each (0)");
ABSL_FLAG(std::string, certs_dir, "",
          "the CA and client-root's certificate for --nodes (plaintext if "
          "empty)");
ABSL_FLAG(bool, insecure, false, "--start: plaintext nodes (as etcd runs)");
ABSL_FLAG(std::string, peer_transport, "grpc",
          "--start: the nodes' --peer_transport (stream: with peer ports)");
ABSL_FLAG(bool, http, false,
          "--start --insecure: the same requests through the leader's "
          "rqlite-compatible HTTP API (/db/execute, /db/query), a thread and "
          "a keep-alive connection per client");
ABSL_FLAG(std::string, http_endpoint, "",
          "or a running rqlite-compatible HTTP API at host:port, plain HTTP "
          "(rqlite itself, or a raftsql node's --http_listen): the same mix "
          "as --http (bench/compare_rqlite.sh)");
ABSL_FLAG(std::vector<std::string>, cpu_pids, {},
          "processes whose CPU counts toward the CPU per operation printed "
          "(etcd's members, say); --start's nodes and this client always "
          "count");
ABSL_FLAG(bool, breakdown, false,
          "--start, unary writes: trace each write's stages and print where "
          "its time went");

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> nodes;
  int start = 0;
  int concurrency = 1;
  int64_t ops = 20'000;
  double max_seconds = 30;
  std::map<std::string, int> mix = {{"insert", 1}};
  std::vector<std::string> server_flags;
  bool sessions = false;  // Stamp writes with a client session (exactly-once).
  // Writes go over this many pipelined ExecuteStream streams instead of one
  // unary Execute call each (0). Each virtual client still sends its next
  // write only after its previous answer.
  int streams = 0;
  // Compare with etcd: single-key Puts to etcd's v3 KV service instead of
  // INSERTs (bench/compare_etcd.sh).
  bool etcd = false;
  // Inserted keys start above the table's largest, so runs can repeat
  // against one cluster.
  int64_t key_base = 0;
  // TLS: the CA and client-root's certificate (from --certs_dir, or the
  // started cluster's); plaintext when empty.
  net::Tls tls;
  std::string certs_dir;
  // --start: plaintext nodes (as etcd runs in compare_etcd.sh).
  bool insecure = false;
  std::string peer_transport;  // --start's nodes'
  // Trace each write's stages and print where its time went.
  bool breakdown = false;
  bool http = false;          // Through the HTTP API instead of gRPC.
  std::string http_endpoint;  // A running HTTP API's (with http).
  // Processes besides --start's nodes whose CPU counts per operation.
  std::vector<pid_t> cpu_pids;
};

struct Result {
  std::vector<double> latencies_us;
  std::vector<ClientWrite> writes;  // With --breakdown.
  int64_t errors = 0;
  std::string first_error;
};

// The flags, checked; false with a message if they do not make a run.
bool Parse(const std::vector<std::string>& rest, Options* o) {
  o->nodes = absl::GetFlag(FLAGS_nodes);
  const std::vector<std::string> etcd = absl::GetFlag(FLAGS_etcd);
  if (!etcd.empty()) {
    o->nodes = etcd;
    o->etcd = true;
  }
  o->start = absl::GetFlag(FLAGS_start);
  o->concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  o->ops = absl::GetFlag(FLAGS_ops);
  o->max_seconds = absl::GetFlag(FLAGS_max_seconds);
  o->sessions = absl::GetFlag(FLAGS_sessions);
  o->streams = std::max(0, absl::GetFlag(FLAGS_stream));
  o->breakdown = absl::GetFlag(FLAGS_breakdown);
  o->http_endpoint = absl::GetFlag(FLAGS_http_endpoint);
  o->http = absl::GetFlag(FLAGS_http) || !o->http_endpoint.empty();
  o->insecure = absl::GetFlag(FLAGS_insecure);
  o->peer_transport = absl::GetFlag(FLAGS_peer_transport);
  o->certs_dir = absl::GetFlag(FLAGS_certs_dir);
  for (const std::string& p : absl::GetFlag(FLAGS_cpu_pids)) {
    int pid = 0;
    if (!absl::SimpleAtoi(p, &pid) || pid <= 0) {
      std::fprintf(stderr, "load: bad --cpu_pids entry %s\n", p.c_str());
      return false;
    }
    o->cpu_pids.push_back(pid);
  }
  // After "--": the started servers' own flags.
  o->server_flags.assign(rest.begin() + 1, rest.end());
  if (o->start == 0 && !o->server_flags.empty()) {
    std::fprintf(stderr, "load: server flags without --start\n");
    return false;
  }
  o->mix.clear();
  for (absl::string_view part :
       absl::StrSplit(absl::GetFlag(FLAGS_mix), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    int w = 1;
    if (!kv.second.empty() && !absl::SimpleAtoi(kv.second, &w)) {
      std::fprintf(stderr, "load: --mix weight %s\n", kv.second.c_str());
      return false;
    }
    const bool http_only =
        kv.first == "select_weak" || kv.first == "select_strong";
    if (http_only && !o->http) {
      std::fprintf(stderr, "load: --mix=%s is for --http only\n",
                   kv.first.c_str());
      return false;
    }
    if (kv.first != "insert" && kv.first != "batch" && kv.first != "select" &&
        kv.first != "select_lin" && !http_only) {
      std::fprintf(stderr, "load: --mix has no %s\n", kv.first.c_str());
      return false;
    }
    o->mix[kv.first] = w;
  }
  if (o->mix.empty()) o->mix = {{"insert", 1}};
  if (o->breakdown && (o->start == 0 || o->streams > 0 || o->etcd)) {
    std::fprintf(stderr, "load: --breakdown needs --start, unary writes\n");
    return false;
  }
  if (o->http && (o->streams > 0 || o->breakdown)) {
    std::fprintf(stderr, "load: HTTP without --stream or --breakdown\n");
    return false;
  }
  if (!o->http_endpoint.empty()) {
    if (o->start > 0 || !o->nodes.empty()) {
      std::fprintf(stderr, "load: --http_endpoint alone\n");
      return false;
    }
    return true;
  }
  if (o->http && (o->start == 0 || !o->insecure)) {
    std::fprintf(stderr,
                 "load: --http needs --start and --insecure (plain HTTP)\n");
    return false;
  }
  if ((o->start > 0) == !o->nodes.empty()) {
    std::fprintf(stderr, "load: --start=N or --nodes (or --etcd), one\n");
    return false;
  }
  return true;
}

v1::ExecuteRequest Insert(int64_t key, int rows) {
  v1::ExecuteRequest r;
  v1::Statement* s = r.add_statements();
  std::string sql = "INSERT INTO bench (k, v) VALUES ";
  for (int i = 0; i < rows; ++i) {
    absl::StrAppend(&sql, i ? ",(?,?)" : "(?,?)");
    s->add_positional()->set_integer(key + i);
    s->add_positional()->set_text("value-" + std::to_string(key + i));
  }
  s->set_sql(sql);
  return r;
}

// A write's outcome: its call's status, else its statement's error.
absl::Status WriteOutcome(absl::Status call, const v1::ExecuteResponse& r) {
  if (call.ok() && r.results_size() > 0 && r.results(0).code() != 0) {
    return absl::InternalError(r.results(0).error());
  }
  return call;
}

// A closed loop of `concurrency` virtual clients on gRPC's callback API:
// each issues its next request from the previous one's completion, so the
// generator needs no thread per client (it shares the 2 cores with the
// servers it measures).
class AsyncLoad {
 public:
  AsyncLoad(const Options& o, const std::vector<std::string>& endpoints,
            Clock::time_point deadline)
      : o_(o), deadline_(deadline) {
    for (const auto& [name, w] : o.mix) {
      mix_.emplace_back(name, w);
      total_weight_ += w;
    }
    // A few connections (distinct channel arguments keep gRPC from sharing
    // one), all to the first endpoint: the leader.
    for (int i = 0; i < 4; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("raftsql.load_channel", i);
      auto channel = grpc::CreateCustomChannel(
          endpoints.front(), net::ChannelCredentials(o.tls), args);
      stubs_.push_back(v1::DatabaseService::NewStub(channel));
      generic_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    for (int i = 0; i < o.streams; ++i) {
      streams_.push_back(std::make_unique<net::ExecuteStreamClient>(
          stubs_[i % stubs_.size()].get(),
          [this](uint64_t tag, absl::StatusOr<v1::ExecuteResponse> r) {
            Done(*slots_[tag],
                 r.ok() ? WriteOutcome(absl::OkStatus(), *r) : r.status());
          }));
    }
    slots_.resize(o.concurrency);
    for (int i = 0; i < o.concurrency; ++i) {
      slots_[i] = std::make_unique<Slot>();
      slots_[i]->index = i;
      slots_[i]->rng.seed(i + 1);
    }
  }

  std::vector<Result> Run() {
    active_ = o_.concurrency;
    for (auto& s : slots_) Issue(*s);
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return active_ == 0; });
    }
    for (auto& stream : streams_) {
      absl::Status closed = stream->Close();
      if (!closed.ok()) {
        std::fprintf(stderr, "load: stream: %s\n", closed.ToString().c_str());
      }
    }
    std::vector<Result> out;
    for (auto& s : slots_) out.push_back(std::move(s->result));
    return out;
  }

 private:
  struct Slot {
    int index = 0;
    std::mt19937_64 rng;
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::ExecuteRequest exec;
    v1::ExecuteResponse exec_response;
    v1::QueryRequest query;
    v1::QueryResponse query_response;
    uint64_t sequence = 0;
    grpc::ByteBuffer put;
    grpc::ByteBuffer put_response;
    Clock::time_point t0;
    Result result;
  };

  void Issue(Slot& s) {
    const int64_t op = next_op_.fetch_add(1);
    if (op >= o_.ops || Clock::now() >= deadline_) {
      std::lock_guard<std::mutex> l(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    int pick = static_cast<int>(s.rng() % total_weight_);
    std::string kind;
    for (auto& [name, w] : mix_) {
      if ((pick -= w) < 0) {
        kind = name;
        break;
      }
    }
    s.ctx = std::make_unique<grpc::ClientContext>();
    s.ctx->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
    auto& stub = *stubs_[s.index % stubs_.size()];
    s.t0 = Clock::now();
    if (o_.etcd) {
      // Encoded by hand: etcdserverpb.PutRequest{key = 1, value = 2} for
      // writes; RangeRequest{key = 1, serializable = 7} for point reads of
      // keys never written, as the SQL reads look up absent rows
      // (select: serializable, a member's own state; select_lin:
      // linearizable, etcd's ReadIndex).
      const bool write = kind == "insert" || kind == "batch";
      const std::string key =
          write ? "key-" + std::to_string(op)
                : "key-" + std::to_string(static_cast<int64_t>(s.rng() % 1000) -
                                          1000);
      std::string wire;
      wire.push_back(0x0a);
      wire.push_back(static_cast<char>(key.size()));
      wire += key;
      if (write) {
        const std::string value = "payload-value-0123456789";
        wire.push_back(0x12);
        wire.push_back(static_cast<char>(value.size()));
        wire += value;
      } else if (kind == "select") {
        wire.push_back(0x38);  // serializable = true
        wire.push_back(0x01);
      }
      grpc::Slice slice(wire);
      s.put = grpc::ByteBuffer(&slice, 1);
      s.put_response.Clear();
      generic_[s.index % generic_.size()]->UnaryCall(
          s.ctx.get(),
          write ? "/etcdserverpb.KV/Put" : "/etcdserverpb.KV/Range",
          grpc::StubOptions(), &s.put, &s.put_response,
          [this, &s](grpc::Status st) { Done(s, net::FromGrpc(st)); });
    } else if (kind == "insert" || kind == "batch") {
      // Keys are unique per op: 1 + op * 100 leaves room for a batch.
      s.exec = Insert(o_.key_base + 1 + op * 100, kind == "batch" ? 100 : 1);
      if (o_.sessions) {
        s.exec.set_session_id(0x10ad0000ull + s.index + 1);
        s.exec.set_sequence(++s.sequence);
      }
      s.exec_response.Clear();
      if (!streams_.empty()) {
        if (!streams_[s.index % streams_.size()]->Send(s.index, s.exec)) {
          Finish(s, absl::UnavailableError("the stream ended"));
        }
        return;
      }
      stub.async()->Execute(
          s.ctx.get(), &s.exec, &s.exec_response, [this, &s](grpc::Status st) {
            const absl::Status outcome =
                WriteOutcome(net::FromGrpc(st), s.exec_response);
            if (o_.breakdown && outcome.ok()) {
              auto ns = [](Clock::time_point t) {
                return std::chrono::duration_cast<std::chrono::nanoseconds>(
                           t.time_since_epoch())
                    .count();
              };
              s.result.writes.push_back(ClientWrite{
                  s.exec_response.index(), ns(s.t0), ns(Clock::now())});
            }
            Done(s, outcome);
          });
    } else {
      s.query.Clear();
      s.query.mutable_statement()->set_sql("SELECT v FROM bench WHERE k = ?");
      s.query.mutable_statement()->add_positional()->set_integer(
          static_cast<int64_t>(s.rng() % 1000) - 1000);
      s.query.set_consistency(kind == "select_lin" ? v1::LINEARIZABLE
                                                   : v1::NONE);
      s.query_response.Clear();
      stub.async()->Query(
          s.ctx.get(), &s.query, &s.query_response,
          [this, &s](grpc::Status st) { Done(s, net::FromGrpc(st)); });
    }
  }

  // A slot that cannot go on: its error is counted and it stops.
  void Finish(Slot& s, const absl::Status& status) {
    if (s.result.errors++ == 0) s.result.first_error = status.ToString();
    std::lock_guard<std::mutex> l(mu_);
    if (--active_ == 0) cv_.notify_all();
  }

  void Done(Slot& s, const absl::Status& status) {
    const double us =
        std::chrono::duration<double, std::micro>(Clock::now() - s.t0).count();
    if (status.ok()) {
      s.result.latencies_us.push_back(us);
    } else if (s.result.errors++ == 0) {
      s.result.first_error = status.ToString();
    }
    Issue(s);
  }

  const Options& o_;
  const Clock::time_point deadline_;
  std::vector<std::pair<std::string, int>> mix_;
  int total_weight_ = 0;
  std::vector<std::unique_ptr<v1::DatabaseService::Stub>> stubs_;
  std::vector<std::unique_ptr<grpc::GenericStub>> generic_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<int64_t> next_op_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  // Last: closed (and waited for) before the slots they answer go.
  std::vector<std::unique_ptr<net::ExecuteStreamClient>> streams_;
};

// Reads a varint; false at the end of `in`.
bool Varint(std::string_view& in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// From an etcdserverpb.StatusResponse: header.member_id (1.2) and leader (4).
void ParseEtcdStatus(std::string_view in, uint64_t* member, uint64_t* leader) {
  uint64_t tag, v;
  while (Varint(in, &tag)) {
    const uint64_t field = tag >> 3, type = tag & 7;
    if (type == 0) {
      if (!Varint(in, &v)) return;
      if (field == 4) *leader = v;
    } else if (type == 2) {
      if (!Varint(in, &v) || v > in.size()) return;
      if (field == 1) {
        std::string_view header = in.substr(0, v);
        uint64_t htag, hv;
        while (Varint(header, &htag)) {
          if ((htag & 7) != 0 || !Varint(header, &hv)) break;
          if ((htag >> 3) == 2) *member = hv;
        }
      }
      in.remove_prefix(v);
    } else {
      return;
    }
  }
}

// Puts the etcd leader first (asked with Maintenance/Status), so that both
// systems are measured with writes sent to their leader.
absl::Status PrepareEtcd(Options& o) {
  for (const std::string& ep : o.nodes) {
    absl::StatusOr<std::string> bytes =
        net::UnaryBytes(ep, "/etcdserverpb.Maintenance/Status", "", 5000);
    if (!bytes.ok()) continue;
    uint64_t member = 0, leader = 0;
    ParseEtcdStatus(*bytes, &member, &leader);
    if (member != 0 && member == leader) {
      std::stable_partition(o.nodes.begin(), o.nodes.end(),
                            [&](const std::string& e) { return e == ep; });
      return absl::OkStatus();
    }
  }
  return absl::UnavailableError("no etcd leader found");
}

// Finds the leader (put first: writes then need no forwarding) and creates
// the table, with rows for point reads.
absl::Status PrepareRaftsql(Options& o) {
  net::ClientOptions co;
  co.tls = o.tls;
  net::Client probe(o.nodes, co);
  const auto wait_until = Clock::now() + std::chrono::seconds(20);
  std::string leader;
  while (leader.empty() && Clock::now() < wait_until) {
    for (const std::string& ep : o.nodes) {
      auto st = probe.Status(ep);
      if (st.ok() && st->role() == "Leader") leader = ep;
    }
    if (leader.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (leader.empty()) return absl::UnavailableError("no leader");
  std::stable_partition(o.nodes.begin(), o.nodes.end(),
                        [&](const std::string& e) { return e == leader; });
  v1::ExecuteRequest create;
  create.add_statements()->set_sql(
      "CREATE TABLE IF NOT EXISTS bench (k INTEGER PRIMARY KEY, v TEXT)");
  if (auto r = probe.Execute(create); !r.ok()) return r.status();
  v1::QueryRequest max;
  max.mutable_statement()->set_sql("SELECT COALESCE(MAX(k), 0) FROM bench");
  max.set_consistency(v1::LINEARIZABLE);
  auto top = probe.Query(max);
  if (!top.ok()) return top.status();
  if (top->rows_size() > 0 && top->rows(0).values_size() > 0) {
    o.key_base = std::max<int64_t>(0, top->rows(0).values(0).integer());
  }
  // Rows for the point reads to find.
  if (o.mix.count("select") || o.mix.count("select_lin")) {
    for (int k = 0; k < 1000; k += 100) {
      v1::ExecuteRequest r = Insert(-1000 + k, 100);
      (void)probe.Execute(r);
    }
  }

  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  net::PrepareGrpc();
  Options o;
  const std::vector<std::string> rest = tools::ParseFlags(
      argc, argv,
      "the gRPC load generator: writes (and reads) at a concurrency against "
      "a cluster it starts (--start=N, its servers' own flags after --) or "
      "one that runs (--nodes), or etcd (--etcd); prints throughput and "
      "latency.\n"
      "  load --start=3 --concurrency=16 --ops=20000 [-- --flag=value ...]\n"
      "  load --nodes=HOST:PORT,... --mix=insert=8,select_lin=2");
  if (!Parse(rest, &o)) return 2;
  if (o.breakdown) o.server_flags.push_back("--trace_writes=write_trace.txt");
  std::unique_ptr<tools::LocalCluster> cluster;
  if (o.start > 0) {
    tools::LocalClusterOptions co;
    co.nodes = o.start;
    co.server_binary = tools::FindBinary(argv[0], "server/raftsql_server");
    char tmpl[] = "/tmp/raftsql-load-XXXXXX";
    co.dir = mkdtemp(tmpl);
    co.extra_flags = o.server_flags;
    co.peer_transport = o.peer_transport;
    co.secure = !o.insecure;
    co.http = o.http;
    cluster = std::make_unique<tools::LocalCluster>(co);
    if (absl::Status s = cluster->Start(); !s.ok()) {
      std::fprintf(stderr, "load: %s\n", s.ToString().c_str());
      return 1;
    }
    o.nodes = cluster->Endpoints();
    o.tls = cluster->client_tls();
    std::printf("started %d durable nodes in %s\n", o.start, co.dir.c_str());
  }
  if (!o.certs_dir.empty()) {
    absl::StatusOr<net::Tls> tls = net::LoadTlsDir(o.certs_dir, "client-root");
    if (!tls.ok()) {
      std::fprintf(stderr, "load: %s\n", tls.status().ToString().c_str());
      return 1;
    }
    o.tls = std::move(*tls);
  }
  if (!o.http_endpoint.empty()) {
    absl::StatusOr<int64_t> top = PrepareHttpTable(o.http_endpoint);
    if (!top.ok()) {
      std::fprintf(stderr, "load: %s\n", top.status().ToString().c_str());
      return 1;
    }
    o.key_base = *top;
  } else {
    absl::Status ready = o.etcd ? PrepareEtcd(o) : PrepareRaftsql(o);
    if (!ready.ok()) {
      std::fprintf(stderr, "load: %s\n", ready.ToString().c_str());
      return 1;
    }
  }
  // CPU per operation, over every process that serves the run.
  std::vector<pid_t> servers = o.cpu_pids;
  for (int id = 1; cluster != nullptr && id <= cluster->size(); ++id) {
    servers.push_back(cluster->Pid(id));
  }
  const double client_cpu_before = bench::SelfCpuSeconds();
  const double server_cpu_before = bench::CpuSecondsOf(servers);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(
                                    static_cast<int64_t>(o.max_seconds * 1000));
  std::vector<Result> results;
  if (o.http) {
    HttpLoadOptions h;
    h.endpoint = o.http_endpoint;
    for (int id = 1; cluster != nullptr && id <= cluster->size(); ++id) {
      if (cluster->Endpoint(id) == o.nodes.front()) {
        h.endpoint = cluster->HttpEndpoint(id);  // The leader's.
      }
    }
    h.concurrency = o.concurrency;
    h.ops = o.ops;
    h.key_base = o.key_base;
    h.mix.assign(o.mix.begin(), o.mix.end());
    h.deadline = deadline;
    for (HttpLoadResult& r : RunHttpLoad(h)) {
      Result out;
      out.latencies_us = std::move(r.latencies_us);
      out.errors = r.errors;
      out.first_error = std::move(r.first_error);
      results.push_back(std::move(out));
    }
  } else {
    AsyncLoad load(o, o.nodes, deadline);
    results = load.Run();
  }
  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();
  const double client_cpu = bench::SelfCpuSeconds() - client_cpu_before;
  const double server_cpu = bench::CpuSecondsOf(servers) - server_cpu_before;

  std::vector<double> all;
  int64_t errors = 0;
  std::string first_error;
  for (Result& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  std::string mix;
  for (auto& [name, w] : o.mix)
    absl::StrAppend(&mix, mix.empty() ? "" : ",", name, "=", w);
  std::printf(
      "mix=%s concurrency=%d ops=%zu errors=%lld time=%.2fs\n"
      "throughput: %.0f ops/s\n"
      "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
      mix.c_str(), o.concurrency, all.size(), static_cast<long long>(errors),
      secs, all.size() / secs, Percentile(all, 0.50) / 1000,
      Percentile(all, 0.90) / 1000, Percentile(all, 0.99) / 1000,
      Percentile(all, 0.999) / 1000, all.empty() ? 0 : all.back() / 1000);
  if (errors > 0) std::printf("first error: %s\n", first_error.c_str());
  if (!all.empty()) {
    const double n = static_cast<double>(all.size());
    std::printf(
        "cpu us/op: %.1f (client %.1f, %zu servers %.1f; /proc ticks of "
        "%.0f ms)\n",
        (client_cpu + server_cpu) * 1e6 / n, client_cpu * 1e6 / n,
        servers.size(), server_cpu * 1e6 / n,
        1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK)));
  }
  if (o.breakdown) {
    // The floor's parts, on this machine now.
    net::ClientOptions probe_options;
    probe_options.tls = o.tls;
    net::Client probe(o.nodes, probe_options);
    std::vector<double> rtt;
    for (int i = 0; i < 200; ++i) {
      const auto t0 = Clock::now();
      if (!probe.Status(o.nodes[0]).ok()) continue;
      rtt.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(rtt.begin(), rtt.end());
    const double fsync_us = FsyncMicros(cluster->data_dir(1), 200);
    const double rtt_us = Percentile(rtt, 0.5);
    std::printf(
        "floor: fdatasync p50 %.1f us, unary round trip (Status) p50 %.1f "
        "us: a round trip + the slower of the leader's fsync and a round "
        "trip + the follower's = %.1f us, before the apply\n",
        fsync_us, rtt_us, rtt_us + std::max(fsync_us, rtt_us + fsync_us));
    // The nodes write their traces as they stop.
    std::vector<std::string> traces;
    for (int id = 1; id <= cluster->size(); ++id) {
      cluster->StopNode(id, SIGTERM);
      traces.push_back(cluster->data_dir(id) + "/write_trace.txt");
    }
    std::vector<ClientWrite> writes;
    for (Result& r : results) {
      writes.insert(writes.end(), r.writes.begin(), r.writes.end());
    }
    PrintBreakdown(writes, traces);
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace raftsql::bench

int main(int argc, char** argv) { return raftsql::bench::Main(argc, argv); }
