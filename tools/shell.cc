// raftsql shell: an interactive SQL shell for a raftsql cluster, in the
// spirit of sqlite3 and the rqlite shell.
//
//   shell --nodes=127.0.0.1:7001,127.0.0.1:7002 --certs_dir=DIR  interactive
//   shell --nodes=127.0.0.1:7001 --certs_dir=DIR -c "SELECT 1"   one shot
//   (--insecure instead of --certs_dir for a plaintext cluster)
//
// Line editing and history (~/.raftsql_history) come from editline. A
// statement may span lines; it runs once it ends with ';'. Reads (SELECT,
// VALUES, WITH, EXPLAIN) go to Query at the chosen consistency, everything
// else to Execute. The client follows the leader on its own.
#include <editline/readline.h>
#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "net/client.h"
#include "tools/shell_data.h"
#include "tools/shell_format.h"
#include "tools/shell_rules.h"

ABSL_FLAG(std::string, nodes, "127.0.0.1:7001",
          "The cluster's client addresses, host:port,... (the shell follows "
          "the leader among them).");
ABSL_FLAG(std::string, certs_dir, "",
          "The cluster CA (ca.crt) and the user's certificate "
          "(client-NAME.crt/.key), as raftsql_certs makes them.");
ABSL_FLAG(std::string, user, "root",
          "The user: its certificate in --certs_dir, or with RAFTSQL_PASSWORD "
          "its password.");
ABSL_FLAG(bool, insecure, false, "Plaintext (a cluster run with --insecure).");
ABSL_FLAG(std::string, c, "",
          "Run these statements and dot-commands (lines, or 'SQL; .command') "
          "and exit: non-zero if one failed.");
ABSL_FLAG(std::string, consistency, "linearizable",
          "Reads: linearizable, or none (the node's own state).");

namespace raftsql::tools {
namespace {

std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// .restore's commands: half the server's default request limit.
constexpr size_t kRestoreCommandBytes = size_t{2} << 20;

// Set by SIGINT while a .watch runs.
volatile std::sig_atomic_t interrupted = 0;

struct Shell {
  net::Client client;
  v1::Consistency consistency = v1::LINEARIZABLE;
  bool timer = false;
  OutputMode mode = OutputMode::kTable;
  bool headers = true;
  int failures = 0;
  // Basic credentials for streams opened on stubs directly (.import).
  std::string authorization;

  Shell(std::vector<std::string> nodes, net::ClientOptions options)
      : client(std::move(nodes), options) {
    if (!options.user.empty()) {
      authorization = net::BasicAuthorization(options.user, options.password);
    }
  }

  void Check(const absl::Status& s) {
    if (!s.ok()) Fail(s);
  }

  void Fail(const absl::Status& s) {
    ++failures;
    std::printf("ERROR: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
                std::string(s.message()).c_str());
  }

  void RunSql(const std::string& sql) {
    const auto start = std::chrono::steady_clock::now();
    if (IsRead(sql)) {
      v1::QueryRequest q;
      q.mutable_statement()->set_sql(sql);
      q.set_consistency(consistency);
      // Streamed, so that a result of any size comes back (the table is
      // laid out once all of it is here).
      v1::QueryResponse all;
      const absl::Status r =
          client.QueryStream(q, [&all](const v1::QueryResponse& page) {
            if (all.columns_size() == 0) {
              *all.mutable_columns() = page.columns();
              *all.mutable_declared_types() = page.declared_types();
            }
            for (const v1::Row& row : page.rows()) *all.add_rows() = row;
            return true;
          });
      if (!r.ok()) {
        Fail(r);
      } else {
        std::fputs(FormatRows(all, mode, headers).c_str(), stdout);
      }
    } else {
      v1::ExecuteRequest e;
      e.add_statements()->set_sql(sql);
      auto r = client.Execute(e);
      if (!r.ok()) {
        Fail(r.status());
      } else {
        const std::string out = FormatExecute(*r);
        if (out.rfind("ERROR", 0) == 0) ++failures;
        std::fputs(out.c_str(), stdout);
      }
    }
    if (timer) {
      const double ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start)
                            .count();
      std::printf("Run Time: %.3f ms\n", ms);
    }
  }

  void Nodes() {
    for (const std::string& ep : client.endpoints()) {
      auto s = client.Status(ep);
      if (!s.ok()) {
        std::printf("%-22s unreachable (%s)\n", ep.c_str(),
                    std::string(s.status().message()).c_str());
        continue;
      }
      std::printf(
          "%-22s id=%llu %-9s term=%llu leader=%llu last=%llu commit=%llu "
          "applied=%llu snapshot=%llu hash=%016llx\n",
          ep.c_str(), static_cast<unsigned long long>(s->id()),
          s->role().c_str(), static_cast<unsigned long long>(s->term()),
          static_cast<unsigned long long>(s->leader()),
          static_cast<unsigned long long>(s->last_index()),
          static_cast<unsigned long long>(s->commit_index()),
          static_cast<unsigned long long>(s->applied_index()),
          static_cast<unsigned long long>(s->snapshot_index()),
          static_cast<unsigned long long>(s->divergence_hash()));
      if (!s->divergence().empty()) {
        std::printf("%-22s DIVERGED (no reads): %s\n", ep.c_str(),
                    s->divergence().c_str());
      }
      if (s->vacuuming()) {
        std::printf("%-22s vacuuming (rebuilding its file)\n", ep.c_str());
      }
      if (!s->decision_model().empty()) {
        std::printf("%-22s decides with model %s\n", ep.c_str(),
                    s->decision_model().c_str());
      }
      if (!s->decision_model_error().empty()) {
        std::printf("%-22s cannot use the active model: %s\n", ep.c_str(),
                    s->decision_model_error().c_str());
      }
      for (const v1::SnapshotTransfer& t : s->snapshot_transfers()) {
        std::printf("%-22s snapshot %llu %s node %llu: %llu of %llu MB\n",
                    ep.c_str(), static_cast<unsigned long long>(t.index()),
                    t.sending() ? "to" : "from",
                    static_cast<unsigned long long>(t.peer()),
                    static_cast<unsigned long long>(t.bytes_done() >> 20),
                    static_cast<unsigned long long>(t.bytes_total() >> 20));
      }
    }
  }

  void Leader() {
    for (const std::string& ep : client.endpoints()) {
      auto s = client.Status(ep);
      if (!s.ok() || s->leader() == 0) continue;
      std::printf("leader: node %llu at %s (term %llu)\n",
                  static_cast<unsigned long long>(s->leader()),
                  s->leader_address().c_str(),
                  static_cast<unsigned long long>(s->term()));
      return;
    }
    std::printf("no leader known\n");
  }

  // Returns false to quit.
  bool Dot(const std::string& line) {
    std::vector<std::string> w =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    const std::string& cmd = w[0];
    if (cmd == ".quit" || cmd == ".exit") return false;
    if (cmd == ".help") {
      std::fputs(kHelp, stdout);
    } else if (cmd == ".nodes") {
      Nodes();
    } else if (cmd == ".leader") {
      Leader();
    } else if (cmd == ".version" && w.size() == 2) {
      auto v = client.GetVersion(w[1]);
      if (v.ok()) {
        std::printf("%llu\n", static_cast<unsigned long long>(*v));
      } else {
        Fail(v.status());
      }
    } else if (cmd == ".consistency") {
      if (w.size() == 2 && (w[1] == "none" || w[1] == "linearizable")) {
        consistency = w[1] == "none" ? v1::NONE : v1::LINEARIZABLE;
      }
      std::printf("consistency: %s\n",
                  consistency == v1::NONE ? "none" : "linearizable");
    } else if (cmd == ".users") {
      Users(client.ListUsers());
    } else if (cmd == ".user" && w.size() >= 3 && w[1] == "drop") {
      Users(client.DropUser(w[2]));
    } else if (cmd == ".user" && w.size() >= 4 && w[1] == "add") {
      // .user add NAME PERMISSION[,PERMISSION...] [PASSWORD]
      const std::vector<std::string> perms =
          absl::StrSplit(w[3], ',', absl::SkipEmpty());
      Users(client.PutUser(w[2], w.size() >= 5 ? w[4] : "", perms));
    } else if (cmd == ".devices") {
      RunSql(
          "SELECT device, connected, node, datetime(last_seen_ms / 1000, "
          "'unixepoch') AS last_seen, acked, backlog, dropped, "
          "open_commands, twin_delta FROM edge_device_status ORDER BY device");
    } else if (cmd == ".device" && w.size() == 4 && w[1] == "add") {
      // .device add ID TOKEN: a user with the device permission.
      Users(client.PutUser(w[2], w[3], {"device"}));
    } else if (cmd == ".commands") {
      std::string where;
      if (w.size() == 2) where = " WHERE device = " + SqlQuote(w[1]);
      RunSql(
          "SELECT id, device, name, params, status, attempts, detail, "
          "datetime(updated_ms / 1000, 'unixepoch') AS updated FROM "
          "edge_commands" +
          where + " ORDER BY seq DESC LIMIT 50");
    } else if (cmd == ".command" && w.size() >= 3) {
      // .command DEVICE NAME [PARAMS_JSON] [EXPIRES_S] [ATTEMPTS]
      v1::IssueEdgeCommandRequest r;
      r.set_device(w[1]);
      r.set_name(w[2]);
      if (w.size() >= 4) r.set_params_json(w[3]);
      if (w.size() >= 5) r.set_expires_in_ms(std::atoll(w[4].c_str()) * 1000);
      if (w.size() >= 6) r.set_max_attempts(std::atoi(w[5].c_str()));
      auto out = client.IssueEdgeCommand(r);
      if (!out.ok()) return Fail(out.status()), true;
      std::printf("%s %s\n", out->id().c_str(),
                  out->created() ? "queued" : "exists already (unchanged)");
    } else if (cmd == ".desired" && w.size() >= 3) {
      // The JSON is the rest of the line.
      const size_t at = line.find(w[2], line.find(w[1]) + w[1].size());
      auto out = client.SetEdgeDesired(w[1], line.substr(at));
      if (!out.ok()) return Fail(out.status()), true;
      std::printf("version %llu: %s\n",
                  static_cast<unsigned long long>(out->version()),
                  out->desired_json().c_str());
    } else if (auto listing = tools::RuleListing(w)) {
      RunSql(*listing);
    } else if (cmd == ".rule" || cmd == ".allow") {
      absl::StatusOr<v1::ExecuteRequest> r = tools::RuleRequest(w, line);
      if (r.ok()) Executed(client.Execute(*r));
      if (!r.ok()) Fail(r.status());
    } else if (cmd == ".model") {
      const int64_t now =
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
      absl::StatusOr<v1::ExecuteRequest> r =
          tools::ModelRequest(client, w, now);
      if (r.ok()) Executed(client.Execute(*r));
      if (!r.ok()) Fail(r.status());
    } else if ((cmd == ".approve" || cmd == ".refuse") && w.size() == 2) {
      const int64_t now =
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
      absl::StatusOr<v1::ExecuteRequest> r =
          tools::ApprovalRequest(client, w[1], cmd == ".approve", now);
      if (r.ok()) Executed(client.Execute(*r));
      if (!r.ok()) Fail(r.status());
    } else if (cmd == ".watch" && w.size() >= 2 && w.size() <= 4) {
      Watch(w);
    } else if (cmd == ".tables") {
      RunSql(
          "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') "
          "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    } else if (cmd == ".schema" || cmd == ".indexes") {
      std::string where =
          cmd == ".schema" ? "sql IS NOT NULL" : "type = 'index'";
      if (w.size() == 2) where += " AND tbl_name = " + SqlQuote(w[1]);
      RunSql(absl::StrCat(
          "SELECT ", cmd == ".schema" ? "sql || ';' AS sql" : "name",
          " FROM sqlite_schema WHERE ", where,
          " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"));
    } else if (cmd == ".dump") {
      std::FILE* out = w.size() == 2 ? std::fopen(w[1].c_str(), "w") : stdout;
      if (out == nullptr) {
        Fail(absl::InvalidArgumentError("cannot write " + w[1]));
      } else {
        Check(Dump(client, consistency, out));
        if (out != stdout) std::fclose(out);
      }
    } else if (cmd == ".backup" && w.size() == 2) {
      Check(BackupToFile(client, w[1]));
    } else if (cmd == ".restore" && w.size() == 2) {
      Check(RestoreFromFile(client, kRestoreCommandBytes, w[1]));
    } else if (cmd == ".import" && w.size() == 3) {
      Check(ImportCsv(client, authorization, w[1], w[2]));
    } else if (cmd == ".remove" && w.size() == 2) {
      uint64_t id = 0;
      if (!absl::SimpleAtoi(w[1], &id)) {
        Fail(absl::InvalidArgumentError("a node id is a number"));
      } else {
        auto r = client.RemoveNode(id);
        if (r.ok()) std::printf("node %s removed\n", w[1].c_str());
        if (!r.ok()) Fail(r.status());
      }
    } else if (cmd == ".status") {
      auto s = client.Status(client.current());
      if (!s.ok()) return Fail(s.status()), true;
      std::fputs(s->DebugString().c_str(), stdout);
    } else if (cmd == ".mode") {
      static const std::pair<const char*, OutputMode> kModes[] = {
          {"table", OutputMode::kTable},
          {"csv", OutputMode::kCsv},
          {"json", OutputMode::kJson},
          {"line", OutputMode::kLine}};
      bool known = w.size() == 1;
      for (const auto& [name, m] : kModes) {
        if (w.size() == 2 && w[1] == name) {
          mode = m;
          known = true;
        }
      }
      if (!known) {
        Fail(absl::InvalidArgumentError("modes: table, csv, json, line"));
      }
      for (const auto& [name, m] : kModes) {
        if (m == mode) std::printf("mode: %s\n", name);
      }
    } else if (cmd == ".headers") {
      if (w.size() == 2) headers = w[1] == "on";
      std::printf("headers: %s\n", headers ? "on" : "off");
    } else if (cmd == ".timer") {
      if (w.size() == 2) timer = w[1] == "on";
      std::printf("timer: %s\n", timer ? "on" : "off");
    } else {
      std::printf("unknown command %s (try .help)\n", cmd.c_str());
      ++failures;
    }
    return true;
  }

  // .watch TABLE|* [FROM_INDEX] [COUNT]: committed changes as they come
  // (from now, or from FROM_INDEX), until COUNT of them or Ctrl-C.
  void Watch(const std::vector<std::string>& w) {
    v1::WatchRequest r;
    if (w[1] != "*") r.add_tables(w[1]);
    uint64_t from = 0;
    if (w.size() >= 3 && !absl::SimpleAtoi(w[2], &from)) {
      std::printf("FROM_INDEX must be a number\n");
      return;
    }
    if (from == 0) {
      // From now: past what the node has applied.
      for (const std::string& ep : client.endpoints()) {
        auto s = client.Status(ep);
        if (s.ok()) {
          from = s->applied_index() + 1;
          break;
        }
      }
    }
    r.set_from_index(from);
    int64_t left = -1;
    if (w.size() == 4 && !absl::SimpleAtoi(w[3], &left)) left = -1;
    interrupted = 0;
    auto* previous = std::signal(SIGINT, [](int) { interrupted = 1; });
    const absl::Status s = client.Watch(r, [&left](const v1::WatchResponse& m) {
      for (const v1::Change& c : m.changes()) {
        std::vector<std::string> values;
        for (const v1::Value& v : c.values()) {
          values.push_back(FormatValue(v));
        }
        std::printf("%llu  %-6s  %s  %lld  %s\n",
                    static_cast<unsigned long long>(c.index()),
                    v1::Change::Op_Name(c.op()).c_str(), c.table().c_str(),
                    static_cast<long long>(c.rowid()),
                    absl::StrJoin(values, "|").c_str());
        if (left > 0) --left;
      }
      std::fflush(stdout);
      return left != 0 && interrupted == 0;
    });
    std::signal(SIGINT, previous);
    if (!absl::IsCancelled(s)) Fail(s);
  }

  // "ok", or the first failed statement's error.
  void Executed(const absl::StatusOr<v1::ExecuteResponse>& r) {
    if (!r.ok()) return Fail(r.status());
    for (const v1::StatementResult& s : r->results()) {
      if (s.code() != 0) {
        return Fail(
            absl::Status(static_cast<absl::StatusCode>(s.code()), s.error()));
      }
    }
    std::printf("ok\n");
  }

  void Users(const absl::StatusOr<v1::UsersResponse>& r) {
    if (!r.ok()) return Fail(r.status());
    for (const v1::UserInfo& u : r->users()) {
      std::printf("%s  %s%s\n", u.name().c_str(),
                  absl::StrJoin(u.permissions(), ",").c_str(),
                  u.has_password() ? "  (password)" : "  (certificate)");
    }
  }

  // Runs every complete statement in `text`; returns false on .quit.
  bool Run(const std::string& text) {
    const std::string t(absl::StripAsciiWhitespace(text));
    if (t.empty()) return true;
    if (t[0] == '.') return Dot(t);
    // "SQL; .command": a piece that is a dot-command runs as one.
    for (const std::string& piece : SplitStatements(t)) {
      const std::string p(absl::StripAsciiWhitespace(piece));
      if (!p.empty() && p[0] == '.') {
        if (!Dot(p)) return false;
      } else {
        RunSql(piece);
      }
    }
    return true;
  }

  static constexpr char kHelp[] =
      ".consistency [none|linearizable]  level of reads (default "
      "linearizable)\n"
      ".command DEV NAME [JSON] [EXPIRES_S] [ATTEMPTS]\n"
      "                                  queue a command for an edge device\n"
      "                                  (its JSON params without spaces)\n"
      ".commands [DEV]                   the latest edge commands\n"
      ".desired DEV JSON                 merge JSON into a device's desired "
      "state\n"
      ".device add ID TOKEN              register an edge device\n"
      ".devices                          edge devices and their state\n"
      ".backup FILE                      the database (one applied state) "
      "into FILE\n"
      ".dump [FILE]                      the tables as SQL text\n"
      ".exit, .quit                      leave the shell\n"
      ".headers on|off                   column names in table and csv "
      "modes\n"
      ".import FILE TABLE                CSV rows into TABLE (created from "
      "the\n"
      "                                  first row if it does not exist)\n"
      ".indexes [TABLE]                  the indexes\n"
      ".mode table|csv|json|line         how rows are printed\n"
      ".remove ID                        remove node ID from the cluster\n"
      ".restore FILE                     load a SQLite file or SQL text "
      "through\n"
      "                                  Raft (into the tables it names)\n"
      ".schema [TABLE]                   CREATE statements\n"
      ".status                           the connected node's status\n"
      ".tables                           the tables and views\n"
      ".help                             this text\n"
      ".leader                           which node leads\n"
      ".nodes                            every node's role, term, indexes, "
      "hash\n"
      ".timer [on|off]                   print each statement's time\n"
      ".user add NAME PERMS [PASSWORD]   store a user (PERMS: all or "
      "execute,query,status,join,remove,admin,backup); without a password "
      "it authenticates by a certificate named NAME\n"
      ".user drop NAME                   remove a user\n"
      ".users                            the stored users\n"
      ".rule add NAME WATCH COMMAND PARAMS_JSON CONDITION...\n"
      "                                  a rule: CONDITION (a SELECT with a\n"
      "                                  device column) over the tables in\n"
      "                                  WATCH issues COMMAND; \"$col\" in\n"
      "                                  PARAMS_JSON takes the row's column\n"
      ".rule veto NAME CONDITION...      devices CONDITION returns get "
      "nothing\n"
      ".rule enable|disable|drop NAME    \n"
      ".rules                            the rules\n"
      ".allow COMMAND DEVICES [PARAM MIN MAX | approval]\n"
      "                                  allow-list COMMAND for devices\n"
      "                                  matching the GLOB DEVICES\n"
      ".approvals, .approve ID, .refuse ID  commands waiting for an operator\n"
      ".audit [N]                        the latest N decisions\n"
      ".model stage NAME FILE|SHA256     name a model by its file's SHA-256\n"
      "                                  (each node's --model_dir must hold\n"
      "                                  it as NAME.gguf); a rule whose\n"
      "                                  COMMAND is @model lets it choose\n"
      ".model activate NAME, .models     the model decisions use; the list\n"
      ".watch TABLE|* [FROM] [COUNT]     committed changes as they come (from\n"
      "                                  now, or from log index FROM), until\n"
      "                                  COUNT of them or Ctrl-C\n"
      ".version TABLE                    the log index of TABLE's last "
      "change\n"
      "SQL ending with ';'               run it (it may span lines)\n";
};

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "the raftsql SQL shell.\n  shell --nodes=host:port,... "
      "(--certs_dir=DIR [--user=NAME] | --insecure) "
      "[--consistency=none|linearizable] [-c \"SQL; .command\"]\n"
      "With RAFTSQL_PASSWORD in the environment, --user logs in with that "
      "password and the CA alone.\n\nCommands:\n",
      Shell::kHelp));
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "shell: unexpected argument %s (try --help)\n",
                 rest[1]);
    return 2;
  }
  const std::vector<std::string> nodes =
      absl::StrSplit(absl::GetFlag(FLAGS_nodes), ',', absl::SkipEmpty());
  const std::string one_shot = absl::GetFlag(FLAGS_c);
  const bool has_one_shot = !one_shot.empty();
  const std::string consistency = absl::GetFlag(FLAGS_consistency);
  const std::string certs_dir = absl::GetFlag(FLAGS_certs_dir);
  const std::string user = absl::GetFlag(FLAGS_user);
  const bool insecure = absl::GetFlag(FLAGS_insecure);
  if (consistency != "none" && consistency != "linearizable") {
    std::fprintf(stderr, "shell: --consistency is none or linearizable\n");
    return 2;
  }
  net::ClientOptions options;
  if (certs_dir.empty() != insecure) {
    std::fprintf(stderr,
                 "shell: give --certs_dir=DIR (TLS, the cluster's CA and "
                 "client certificate) or --insecure (plaintext)\n");
    return 2;
  }
  // A password (from the environment, never the command line) makes the
  // shell a stored user: the CA is enough, no client certificate needed.
  const char* password = std::getenv("RAFTSQL_PASSWORD");
  if (password != nullptr && *password != '\0') {
    options.user = user;
    options.password = password;
  }
  if (!insecure) {
    absl::StatusOr<net::Tls> tls = net::LoadTlsDir(
        certs_dir, options.password.empty() ? "client-" + user : "");
    if (!tls.ok()) {
      std::fprintf(stderr, "shell: %s\n", tls.status().ToString().c_str());
      return 2;
    }
    options.tls = std::move(*tls);
  }
  Shell shell(nodes, std::move(options));
  if (consistency == "none") shell.consistency = v1::NONE;
  if (has_one_shot) {
    // Several commands may be given separated by newlines.
    for (absl::string_view line : absl::StrSplit(one_shot, '\n')) {
      if (!shell.Run(std::string(line))) break;
    }
    return shell.failures == 0 ? 0 : 1;
  }

  const char* home = std::getenv("HOME");
  const std::string history =
      home != nullptr ? absl::StrCat(home, "/.raftsql_history") : "";
  using_history();
  if (!history.empty()) read_history(history.c_str());
  std::printf("raftsql shell; .help for help. Nodes: %s\n",
              absl::StrJoin(nodes, ",").c_str());
  std::string buffer;
  while (true) {
    char* raw = readline(buffer.empty() ? "raftsql> " : "    ...> ");
    if (raw == nullptr) break;  // EOF (Ctrl-D)
    std::string line(raw);
    std::free(raw);
    if (buffer.empty() && absl::StripAsciiWhitespace(line).empty()) continue;
    if (buffer.empty() && absl::StripAsciiWhitespace(line)[0] == '.') {
      // A password never goes into the history file.
      if (!absl::StartsWith(absl::StripAsciiWhitespace(line), ".user ")) {
        add_history(line.c_str());
      }
      if (!shell.Run(line)) break;
      continue;
    }
    buffer += buffer.empty() ? line : "\n" + line;
    if (!sqlite3_complete(buffer.c_str())) continue;
    add_history(buffer.c_str());
    shell.Run(buffer);
    buffer.clear();
  }
  if (!history.empty()) write_history(history.c_str());
  return 0;
}

}  // namespace
}  // namespace raftsql::tools

int main(int argc, char** argv) { return raftsql::tools::Main(argc, argv); }
