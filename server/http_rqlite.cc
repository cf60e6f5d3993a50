#include "server/http_rqlite.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/await.h"
#include "server/image_spool.h"
#include "server/load_plan.h"
#include "server/member_probe.h"
#include "server/metrics.h"
#include "server/readiness.h"
#include "server/rqlite_json.h"

namespace raftsql::server {

namespace {

// A gzip stream (zlib, gzip framing), fed a piece at a time.
class GzipStream {
 public:
  GzipStream() {
    ok_ = deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                       /*windowBits=*/15 + 16, /*memLevel=*/8,
                       Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipStream() {
    if (ok_) deflateEnd(&z_);
  }
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Appends to `out` what `in` compresses to; `last` ends the stream.
  bool Deflate(const std::string& in, bool last, std::string* out) {
    if (!ok_) return false;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    char buf[64 << 10];
    int rc = Z_OK;
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof(buf);
      rc = deflate(&z_, last ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) return false;
      out->append(buf, sizeof(buf) - z_.avail_out);
    } while (z_.avail_out == 0 || (last && rc != Z_STREAM_END));
    return true;
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

using nlohmann::json;

constexpr char kJson[] = "application/json; charset=utf-8";
// A backup is read from its image this much at a time.
constexpr size_t kBackupChunkBytes = size_t{1} << 20;
constexpr char kText[] = "text/plain; charset=utf-8";

// Failures of a statement rather than of the request: rqlite answers them
// 200, with {"error": ...} in the statement's place.
bool IsStatementError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

bool IsJsonBody(const std::string& body) {
  for (char c : body) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return c == '[';
  }
  return false;
}

}  // namespace

struct RqliteApi::Call {
  const httplib::Request& req;
  httplib::Response& res;
  Clock::time_point start = Clock::now();
  Clock::time_point deadline;
  bool pretty = false;
  bool timings = false;
  bool associative = false;
  std::string user;
  json results = json::array();
  uint64_t raft_index = 0;
};

RqliteApi::RqliteApi(RaftServer* node, const HttpOptions& options,
                     Authorize authorize)
    : node_(node), options_(options), authorize_(std::move(authorize)) {}

namespace {

void Fail(httplib::Response& res, const absl::Status& status, bool pretty) {
  res.status = rqlite::HttpStatusOf(status.code());
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      absl::StartsWith(status.message(), "too large")) {
    res.status = 413;
  }
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", "Basic realm=\"raftsql\"");
  }
  res.set_content(
      rqlite::Dump(json{{"error", sm::TruncatedMessage(status.message())}},
                   pretty),
      kJson);
}

}  // namespace

void RqliteApi::Register(httplib::Server& server) {
  // Every method reaches the handler, which answers 405 for the wrong
  // ones (as rqlite), not httplib's 404.
  auto route = [&server](const std::string& path, httplib::Server::Handler h) {
    server.Get(path, h);
    server.Post(path, h);
    server.Put(path, h);
    server.Delete(path, h);
    server.Patch(path, h);
  };
  auto db = [this](uint32_t permission, std::vector<std::string> methods,
                   void (RqliteApi::*handler)(Call&)) {
    return [this, permission, methods, handler](const httplib::Request& req,
                                                httplib::Response& res) {
      Call call{req, res};
      call.pretty = req.has_param("pretty");
      call.timings = req.has_param("timings");
      call.associative = req.has_param("associative");
      bool allowed = false;
      for (const std::string& m : methods) allowed = allowed || req.method == m;
      if (!allowed) {
        Fail(res,
             absl::UnimplementedError(
                 absl::StrCat(req.method, " is not a method of ", req.path)),
             call.pretty);
        res.status = 405;
        return;
      }
      absl::StatusOr<Principal> caller = authorize_(req, permission);
      if (!caller.ok()) return Fail(res, caller.status(), call.pretty);
      call.user = caller->name;
      call.deadline = call.start + RequestBound(node_->options());
      if (req.has_param("timeout")) {
        absl::StatusOr<std::chrono::nanoseconds> t =
            rqlite::ParseDuration(req.get_param_value("timeout"));
        if (!t.ok()) return Fail(res, t.status(), call.pretty);
        call.deadline = std::min(
            call.deadline,
            call.start + std::chrono::duration_cast<Clock::duration>(*t));
      }
      (this->*handler)(call);
    };
  };
  route("/db/execute", db(sm::kPermExecute, {"POST"}, &RqliteApi::Execute));
  route("/db/query", db(sm::kPermQuery, {"GET", "POST"}, &RqliteApi::Query));
  route("/db/request",
        db(sm::kPermExecute | sm::kPermQuery, {"POST"}, &RqliteApi::Request));
  route("/status", db(sm::kPermStatus, {"GET"}, &RqliteApi::Status));
  route("/nodes", db(sm::kPermStatus, {"GET"}, &RqliteApi::Nodes));
  route("/metrics", db(sm::kPermStatus, {"GET"}, &RqliteApi::Metrics));
  route("/db/backup", db(sm::kPermBackup, {"GET"}, &RqliteApi::Backup));
  // The body goes to a file as it arrives (a content reader), not into
  // memory; other methods get 405.
  const auto not_load = db(sm::kPermExecute, {"POST"}, &RqliteApi::Execute);
  for (auto add : {&httplib::Server::Get, &httplib::Server::Put,
                   &httplib::Server::Delete, &httplib::Server::Patch}) {
    (server.*add)("/db/load", not_load);
  }
  server.Post("/db/load",
              [this](const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& content) {
                Load(req, res, content);
              });
  server.Get("/readyz", [this](const httplib::Request& req,
                               httplib::Response& res) { Readyz(req, res); });
  server.Get("/livez", [this](const httplib::Request&, httplib::Response& res) {
    Livez(res);
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/status", 302);
  });
}

absl::StatusOr<sm::CommandResult> RqliteApi::RunCommand(
    Call& call, std::vector<sm::Statement> statements, bool transaction) {
  sm::Command cmd;
  cmd.statements = std::move(statements);
  cmd.transaction = transaction || call.req.has_param("transaction");
  cmd.user = call.user;
  const size_t bytes = cmd.Encode().size();
  const size_t limit = node_->options().max_request_bytes;
  if (bytes > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too large: the request has ", bytes, " bytes, the limit is ", limit));
  }
  return Await<sm::CommandResult>(
      [this, &cmd](RaftServer::Done<sm::CommandResult> done) {
        node_->Execute(std::move(cmd), std::move(done));
      },
      call.deadline, "the write's outcome is unknown");
}

absl::StatusOr<sm::QueryResult> RqliteApi::RunQuery(Call& call,
                                                    sm::Statement statement) {
  const std::string level =
      absl::AsciiStrToLower(call.req.get_param_value("level"));
  bool linearizable = level != "none";
  if (level == "none" && call.req.has_param("freshness")) {
    absl::Status fresh = CheckFreshness(call.req.get_param_value("freshness"));
    if (!fresh.ok()) return fresh;
  }
  if (level == "weak") {
    // rqlite's weak: the node that believes it leads reads its own state,
    // without a heartbeat round; another asks the leader (ReadIndex).
    linearizable = !node_->is_leader();
  } else if (level == "auto") {  // Local reads on a learner (rqlite's
                                 // read-only node), weak on a voter.
    absl::StatusOr<NodeState> s = State(call.deadline);
    if (!s.ok()) return s.status();
    for (const Member& m : s->members) {
      if (m.id == s->id) linearizable = m.voter && s->role != "Leader";
    }
  }
  sm::ReadLimits limits;
  limits.deadline = call.deadline;
  return Await<sm::QueryResult>(
      [&](RaftServer::Done<sm::QueryResult> done) {
        node_->Query(std::move(statement), linearizable, limits,
                     std::move(done));
      },
      call.deadline, "the read");
}

absl::Status RqliteApi::CheckFreshness(const std::string& freshness) {
  // rqlite's: a level=none read on a node that has not heard from its
  // leader within `freshness` is refused (ignored when 0, and on the
  // leader).
  absl::StatusOr<std::chrono::nanoseconds> bound =
      rqlite::ParseDuration(freshness);
  if (!bound.ok()) return bound.status();
  if (bound->count() <= 0 || node_->is_leader()) return absl::OkStatus();
  const int64_t age_ms = node_->leader_contact_age_ms();
  if (age_ms == INT64_MAX) {
    return absl::UnavailableError(absl::StrCat(
        "stale read: this node knows no leader (freshness=", freshness, ")"));
  }
  if (std::chrono::milliseconds(age_ms) <= *bound) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("stale read: this node last heard from its leader ", age_ms,
                   " ms ago, longer than freshness=", freshness));
}

absl::StatusOr<NodeState> RqliteApi::State(Clock::time_point deadline) {
  return Await<NodeState>(
      [this](RaftServer::Done<NodeState> done) {
        node_->State(std::move(done));
      },
      deadline, "the node's state");
}

namespace {

// The body as statements, or a 400 written into `res`.
std::optional<std::vector<sm::Statement>> Statements(
    const httplib::Request& req, httplib::Response& res, bool pretty) {
  absl::StatusOr<std::vector<sm::Statement>> s =
      rqlite::ParseStatements(req.body, IsJsonBody(req.body));
  if (!s.ok()) {
    Fail(res, s.status(), pretty);
    return std::nullopt;
  }
  return *std::move(s);
}

void Finish(httplib::Response& res, json results, bool pretty, bool timings,
            double seconds, uint64_t raft_index, bool want_index) {
  json doc = {{"results", std::move(results)}};
  if (timings) doc["time"] = seconds;
  if (want_index && raft_index != 0) doc["raft_index"] = raft_index;
  res.status = 200;
  res.set_content(rqlite::Dump(doc, pretty), kJson);
}

}  // namespace

void RqliteApi::Push(Call& call, const sm::CommandResult& r) {
  for (const sm::StatementResult& s : r.statements) {
    call.results.push_back(rqlite::ExecuteResultJson(s, call.associative));
  }
  call.raft_index = r.index;
}

void RqliteApi::RunAlone(Call& call, const sm::Statement& statement) {
  absl::StatusOr<sm::CommandResult> one = RunCommand(call, {statement});
  if (one.ok()) {
    Push(call, *one);
  } else {
    call.results.push_back(rqlite::ErrorResultJson(one.status()));
  }
}

void RqliteApi::FinishWrites(Call& call) {
  Finish(call.res, std::move(call.results), call.pretty, call.timings,
         Seconds(Clock::now() - call.start), call.raft_index,
         call.req.has_param("raft_index"));
}

void RqliteApi::Execute(Call& call) {
  std::optional<std::vector<sm::Statement>> statements =
      Statements(call.req, call.res, call.pretty);
  if (!statements.has_value()) return;
  const bool tx = call.req.has_param("transaction");
  if (!statements->empty()) {
    absl::StatusOr<sm::CommandResult> r = RunCommand(call, *statements);
    if (r.ok()) {
      Push(call, *r);
    } else if (!IsStatementError(r.status())) {
      return Fail(call.res, r.status(), call.pretty);
    } else if (tx || statements->size() == 1) {
      // Nothing was written; rqlite names the failing statement's error.
      call.results.push_back(rqlite::ErrorResultJson(r.status()));
    } else {
      // One statement was refused before the command was proposed: run
      // each alone, so that the others run and the error has its place.
      for (sm::Statement& s : *statements) {
        RunAlone(call, s);
      }
    }
  }
  FinishWrites(call);
}

void RqliteApi::Query(Call& call) {
  std::vector<sm::Statement> statements;
  if (call.req.method == "GET") {
    if (!call.req.has_param("q")) {
      return Fail(call.res,
                  absl::InvalidArgumentError("a GET query needs q=<SQL>"),
                  call.pretty);
    }
    statements.push_back(sm::Statement{call.req.get_param_value("q")});
  } else {
    std::optional<std::vector<sm::Statement>> s =
        Statements(call.req, call.res, call.pretty);
    if (!s.has_value()) return;
    statements = *std::move(s);
  }
  for (size_t i = 0; i < statements.size(); ++i) {
    const Clock::time_point began = Clock::now();
    absl::StatusOr<sm::QueryResult> r =
        RunQuery(call, std::move(statements[i]));
    if (!r.ok() && !IsStatementError(r.status()) && i == 0) {
      return Fail(call.res, r.status(), call.pretty);
    }
    json one = r.ok() ? rqlite::QueryResultJson(*r, call.associative)
                      : rqlite::ErrorResultJson(r.status());
    if (r.ok() && call.timings) one["time"] = Seconds(Clock::now() - began);
    call.results.push_back(std::move(one));
  }
  Finish(call.res, std::move(call.results), call.pretty, call.timings,
         Seconds(Clock::now() - call.start), 0, false);
}

void RqliteApi::Request(Call& call) {
  std::optional<std::vector<sm::Statement>> statements =
      Statements(call.req, call.res, call.pretty);
  if (!statements.has_value()) return;
  const bool tx = call.req.has_param("transaction");
  if (!statements->empty()) {
    // Writes alone go as one command, as /db/execute.
    absl::StatusOr<sm::CommandResult> r = RunCommand(call, *statements);
    const std::optional<sm::StatementKind> wrong =
        r.ok() ? std::nullopt : sm::WrongPathOf(r.status());
    if (r.ok()) {
      Push(call, *r);
    } else if (!IsStatementError(r.status())) {
      return Fail(call.res, r.status(), call.pretty);
    } else if (tx && wrong == sm::StatementKind::kReadsOnly) {
      return Fail(call.res,
                  absl::InvalidArgumentError(
                      "raftsql runs a transaction of writes only: send the "
                      "reads apart, or without transaction"),
                  call.pretty);
    } else if (tx || statements->size() == 1) {
      if (wrong != sm::StatementKind::kReadsOnly) {
        call.results.push_back(rqlite::ErrorResultJson(r.status()));
      } else {  // A single read.
        absl::StatusOr<sm::QueryResult> q =
            RunQuery(call, std::move(statements->front()));
        if (!q.ok() && !IsStatementError(q.status())) {
          return Fail(call.res, q.status(), call.pretty);
        }
        call.results.push_back(
            q.ok() ? rqlite::QueryResultJson(*q, call.associative)
                   : rqlite::ErrorResultJson(q.status()));
      }
    } else {
      // Each statement in turn: as a read, unless it writes.
      for (sm::Statement& s : *statements) {
        absl::StatusOr<sm::QueryResult> q = RunQuery(call, s);
        if (q.ok() ||
            sm::WrongPathOf(q.status()) != sm::StatementKind::kWrites) {
          call.results.push_back(
              q.ok() ? rqlite::QueryResultJson(*q, call.associative)
                     : rqlite::ErrorResultJson(q.status()));
          continue;
        }
        RunAlone(call, s);
      }
    }
  }
  FinishWrites(call);
}

void RqliteApi::Status(Call& call) {
  absl::StatusOr<NodeState> s = State(call.deadline);
  if (!s.ok()) return Fail(call.res, s.status(), call.pretty);
  json nodes = json::array();
  bool voter = false;
  for (const Member& m : s->members) {
    nodes.push_back({{"id", std::to_string(m.id)},
                     {"addr", m.address},
                     {"client_addr", m.client_address},
                     {"suffrage", m.voter ? "Voter" : "Nonvoter"}});
    if (m.id == s->id) voter = m.voter;
  }
  json transfers = json::array();
  for (const core::SnapshotTransfer& t : s->snapshot_transfers) {
    transfers.push_back({{"peer", t.peer},
                         {"index", t.index},
                         {"bytes_done", t.bytes_done},
                         {"bytes_total", t.bytes_total},
                         {"sending", t.sending}});
  }
  json doc = {
      {"store",
       {{"node_id", std::to_string(s->id)},
        {"raft",
         {{"state", s->role},
          {"term", s->term},
          {"commit_index", s->commit},
          {"applied_index", s->applied},
          {"last_log_index", s->last_index},
          {"snapshot_index", s->snapshot_index},
          {"voter", voter},
          {"longest_loop_us", s->longest_loop_us},
          {"longest_loop_in_snapshots_us", s->longest_loop_in_snapshots_us},
          {"snapshot_transfers", std::move(transfers)}}},
        {"leader",
         {{"node_id", s->leader == 0 ? "" : std::to_string(s->leader)},
          {"addr", s->leader_address}}},
        {"nodes", std::move(nodes)},
        {"divergence_hash", s->divergence_hash},
        {"divergence", s->divergence},
        {"vacuuming", s->vacuuming},
        {"change_log_first", s->change_log_first},
        {"change_log_bytes", s->change_log_bytes}}},
      {"http",
       {{"bind_addr", s->http_address},
        {"auth", node_->options().tls.enabled() ? "enabled" : "disabled"}}},
      {"build", {{"name", "raftsql"}}},
  };
  call.res.set_content(rqlite::Dump(doc, call.pretty), kJson);
}

void RqliteApi::Nodes(Call& call) {
  absl::StatusOr<NodeState> s = State(call.deadline);
  if (!s.ok()) return Fail(call.res, s.status(), call.pretty);
  std::vector<Member> members;
  const bool nonvoters = call.req.has_param("nonvoters");
  for (const Member& m : s->members) {
    if (m.voter || nonvoters) members.push_back(m);
  }
  // Each member is asked within a second (or the request's timeout).
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline -
                                                            Clock::now())
          .count(),
      1, 1000));
  const std::vector<MemberProbe> probes =
      ProbeMembers(members, node_->options().tls, timeout_ms);
  const bool list = call.req.get_param_value("ver") == "2";
  json out = list ? json::array() : json::object();
  for (size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    const MemberProbe& p = probes[i];
    json n = {{"id", std::to_string(m.id)}, {"api_addr", p.http_address},
              {"addr", m.address},          {"voter", m.voter},
              {"reachable", p.reachable},   {"leader", m.id == s->leader},
              {"time", p.seconds}};
    if (!p.reachable) n["error"] = p.error;
    if (list) {
      out.push_back(std::move(n));
    } else {
      out[std::to_string(m.id)] = std::move(n);
    }
  }
  if (list) out = json{{"nodes", std::move(out)}};
  call.res.set_content(rqlite::Dump(out, call.pretty), kJson);
}

void RqliteApi::Backup(Call& call) {
  const std::string fmt = call.req.get_param_value("fmt");
  if (!fmt.empty() && fmt != "binary" && fmt != "sql") {
    return Fail(call.res,
                absl::InvalidArgumentError(absl::StrCat(
                    "unknown backup format \"", sm::TruncatedMessage(fmt),
                    "\": fmt=binary (the SQLite file) or fmt=sql")),
                call.pretty);
  }
  absl::StatusOr<std::shared_ptr<sm::ImageSource>> source =
      Await<std::shared_ptr<sm::ImageSource>>(
          [this](RaftServer::Done<std::shared_ptr<sm::ImageSource>> done) {
            node_->Backup(std::move(done));
          },
          call.deadline, "the backup's start");
  if (!source.ok()) return Fail(call.res, source.status(), call.pretty);
  (*source)->Wait();  // Its WAL frames are known.
  absl::StatusOr<core::ImageInfo> info = (*source)->Latest();
  if (!info.ok()) {
    return Fail(call.res,
                absl::UnavailableError(absl::StrCat(
                    "the backup could not start: ", (*source)->last_error())),
                call.pretty);
  }
  const uint64_t index = info->metadata.index;
  const bool compress = call.req.has_param("compress");
  if (fmt == "sql") {
    return BackupSql(call, **source, index, info->size, compress);
  }
  call.res.set_header("Content-Disposition",
                      absl::StrCat("attachment; filename=\"raftsql-", index,
                                   compress ? ".sqlite.gz\"" : ".sqlite\""));
  call.res.set_header("X-Raftsql-Applied-Index", absl::StrCat(index));
  if (compress) {
    // rqlite's compress: the file gzipped as it goes (its length unknown:
    // chunked), a chunk of the image at a time.
    auto gzip = std::make_shared<GzipStream>();
    call.res.set_chunked_content_provider(
        "application/gzip",
        [src = *source, index, size = info->size, gzip, offset = uint64_t{0}](
            size_t, httplib::DataSink& sink) mutable {
          std::string out;
          if (offset < size) {
            absl::StatusOr<std::string> chunk =
                src->Read(index, offset,
                          std::min<uint64_t>(size - offset, kBackupChunkBytes));
            if (!chunk.ok() || chunk->empty()) return false;
            offset += chunk->size();
            if (!gzip->Deflate(*chunk, offset == size, &out)) return false;
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) {
            return false;
          }
          if (offset == size) sink.done();
          return true;
        });
    return;
  }
  // Written chunk by chunk as the client takes them, from the read
  // transaction the source holds until the last chunk went.
  call.res.set_content_provider(
      info->size, "application/octet-stream",
      [src = *source, index](size_t offset, size_t length,
                             httplib::DataSink& sink) {
        absl::StatusOr<std::string> chunk =
            src->Read(index, offset, std::min(length, kBackupChunkBytes));
        if (!chunk.ok() || chunk->empty()) return false;
        return sink.write(chunk->data(), chunk->size());
      });
}

void RqliteApi::BackupSql(Call& call, sm::ImageSource& source, uint64_t index,
                          uint64_t size, bool compress) {
  // The image is copied to a file (the read transaction is let go once
  // it is), which the dump opens as a database and reads once more.
  absl::StatusOr<std::shared_ptr<SpooledImage>> copy = SpoolImage(
      source, index, size, node_->options().data_dir, kBackupChunkBytes);
  if (!copy.ok()) return Fail(call.res, copy.status(), call.pretty);
  call.res.set_header("Content-Disposition",
                      absl::StrCat("attachment; filename=\"raftsql-", index,
                                   compress ? ".sql.gz\"" : ".sql\""));
  call.res.set_header("X-Raftsql-Applied-Index", absl::StrCat(index));
  // Written in one call, a piece at a time as the client takes them; a
  // failure ends the response without its last chunk (the client sees a
  // truncated body, not a complete one).
  call.res.set_chunked_content_provider(
      compress ? "application/gzip" : "application/sql",
      [copy = *std::move(copy), compress](size_t,
                                          httplib::DataSink& sink) mutable {
        GzipStream gzip;
        auto send = [&](const std::string& piece, bool last) {
          std::string zipped;
          if (compress && !gzip.Deflate(piece, last, &zipped)) return false;
          const std::string& out = compress ? zipped : piece;
          return out.empty() || sink.write(out.data(), out.size());
        };
        absl::StatusOr<LoadTotals> dumped = DumpSqliteFile(
            copy->path(), kBackupChunkBytes, [&](std::string piece) {
              return send(piece, false)
                         ? absl::OkStatus()
                         : absl::CancelledError("the client went away");
            });
        // The copy is deleted before the response's end goes out, so a
        // client that has the whole backup never finds it left behind.
        copy.reset();
        if (!dumped.ok() || !send("", true)) return false;
        sink.done();
        return true;
      });
}

void RqliteApi::Load(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& content) {
  Call call{req, res};
  call.pretty = req.has_param("pretty");
  absl::StatusOr<Principal> caller = authorize_(req, sm::kPermExecute);
  if (!caller.ok()) return Fail(res, caller.status(), call.pretty);
  call.user = caller->name;
  // The body goes to a file beside the database, deleted when done.
  std::string path = node_->options().data_dir + "/load-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    return Fail(res, absl::InternalError("cannot make the load's file"),
                call.pretty);
  }
  struct Remove {
    int fd;
    std::string path;
    ~Remove() {
      close(fd);
      unlink(path.c_str());
    }
  } remove{fd, path};
  uint64_t received = 0;
  bool written = true;
  const bool complete = content([&](const char* data, size_t n) {
    received += n;
    if (received > options_.max_load_bytes) return written = false;
    while (n > 0) {
      const ssize_t w = write(fd, data, n);
      if (w <= 0) return written = false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  });
  if (received > options_.max_load_bytes) {
    return Fail(res,
                absl::ResourceExhaustedError(
                    absl::StrCat("too large: a load holds at most ",
                                 options_.max_load_bytes, " bytes")),
                call.pretty);
  }
  if (!written || !complete) {
    return Fail(res,
                absl::UnavailableError(
                    "the load's body could not be received or stored"),
                call.pretty);
  }
  const LoadSink sink = [&](std::vector<sm::Statement> statements) {
    call.start = Clock::now();  // Each command has the usual time.
    call.deadline = call.start + RequestBound(node_->options());
    absl::StatusOr<sm::CommandResult> r =
        RunCommand(call, std::move(statements), /*transaction=*/true);
    if (!r.ok()) return r.status();
    return r->Cause();
  };
  const Clock::time_point began = Clock::now();
  // Half the request limit: a command's encoding adds to the statements'.
  absl::StatusOr<LoadedFile> file =
      LoadFile(path, node_->options().max_request_bytes / 2, sink);
  if (!file.ok()) return Fail(res, file.status(), call.pretty);
  const LoadTotals& totals = file->totals;
  json loaded = {{"format", file->sqlite ? "sqlite" : "sql"},
                 {"commands", totals.commands},
                 {"statements", totals.statements},
                 {"rows", totals.rows},
                 {"bytes", received}};
  json result = json::object();
  if (totals.rows != 0) result["rows_affected"] = totals.rows;
  json doc = {{"results", json::array({result})}, {"loaded", loaded}};
  if (req.has_param("timings")) doc["time"] = Seconds(Clock::now() - began);
  res.set_content(rqlite::Dump(doc, call.pretty), kJson);
}

void RqliteApi::Metrics(Call& call) {
  absl::StatusOr<NodeState> s = State(call.deadline);
  if (!s.ok()) return Fail(call.res, s.status(), call.pretty);
  call.res.set_content(PrometheusText(node_->Metrics(*std::move(s)),
                                      node_->request_metrics().Read()),
                       "text/plain; version=0.0.4; charset=utf-8");
}

void RqliteApi::Readyz(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<NodeState> s = State(Clock::now() + std::chrono::seconds(2));
  if (!s.ok()) {
    res.status = 503;
    res.set_content(
        absl::StrCat("[-]node not ok: ", s.status().message(), "\n"), kText);
    return;
  }
  const Readiness r = AssessReadiness(*s, node_->options().ready_max_lag,
                                      !req.has_param("noleader"));
  res.status = r.ready ? 200 : 503;
  res.set_content(r.report, kText);
}

void RqliteApi::Livez(httplib::Response& res) {
  // Alive while the Raft loop answers.
  absl::StatusOr<NodeState> s = State(Clock::now() + std::chrono::seconds(2));
  res.status = s.ok() ? 200 : 503;
  res.set_content(s.ok() ? std::string("ok\n")
                         : absl::StrCat("not ok: ", s.status().message(), "\n"),
                  kText);
}

}  // namespace raftsql::server
