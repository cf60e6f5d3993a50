#include "tools/shell_data.h"

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "net/execute_stream_client.h"
#include "server/convert.h"
#include "server/load_plan.h"
#include "sm/command.h"
#include "tools/shell_format.h"

namespace raftsql::tools {

namespace {

std::string Quoted(const std::string& name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

v1::Value Text(const std::string& s) {
  v1::Value v;
  v.set_text(s);
  return v;
}

absl::StatusOr<v1::QueryResponse> Read(net::Client& client,
                                       const std::string& sql,
                                       std::vector<v1::Value> params = {},
                                       v1::Consistency c = v1::LINEARIZABLE) {
  v1::QueryRequest q;
  q.mutable_statement()->set_sql(sql);
  for (v1::Value& p : params) *q.mutable_statement()->add_positional() = p;
  q.set_consistency(c);
  v1::QueryResponse all;
  const absl::Status s =
      client.QueryStream(q, [&all](const v1::QueryResponse& page) {
        if (all.columns_size() == 0) *all.mutable_columns() = page.columns();
        for (const v1::Row& row : page.rows()) *all.add_rows() = row;
        return true;
      });
  if (!s.ok()) return s;
  return all;
}

// The first failed statement of an answer, or its status.
absl::Status Outcome(const absl::StatusOr<v1::ExecuteResponse>& r) {
  if (!r.ok()) return r.status();
  for (const v1::StatementResult& s : r->results()) {
    if (s.code() != 0 &&
        s.code() != static_cast<int>(absl::StatusCode::kAborted)) {
      return absl::Status(static_cast<absl::StatusCode>(s.code()), s.error());
    }
  }
  for (const v1::StatementResult& s : r->results()) {
    if (s.code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(s.code()), s.error());
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SqlLiteral(const v1::Value& v) {
  return sm::SqlLiteral(server::FromProto(v));
}

absl::Status BackupToFile(net::Client& client, const std::string& file) {
  const std::string partial = file + ".partial";
  std::FILE* out = std::fopen(partial.c_str(), "wb");
  if (out == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", partial));
  }
  uint64_t index = 0, size = 0, written = 0;
  bool write_failed = false;
  absl::Status s = client.Backup([&](const v1::BackupChunk& c) {
    if (written == 0) {
      index = c.applied_index();
      size = c.size();
    }
    if (std::fwrite(c.data().data(), 1, c.data().size(), out) !=
        c.data().size()) {
      write_failed = true;
      return false;
    }
    written += c.data().size();
    return true;
  });
  const bool closed = std::fflush(out) == 0 && fsync(fileno(out)) == 0;
  std::fclose(out);
  if (s.ok() && (write_failed || !closed)) {
    s = absl::DataLossError(absl::StrCat("cannot write ", partial));
  }
  if (s.ok() && written != size) {
    s = absl::DataLossError(
        absl::StrCat("the backup ended at ", written, " of ", size, " bytes"));
  }
  if (!s.ok()) {
    std::remove(partial.c_str());
    return s;
  }
  std::error_code ec;
  std::filesystem::rename(partial, file, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename: ", ec.message()));
  std::printf("backed up log index %llu: %llu bytes to %s\n",
              static_cast<unsigned long long>(index),
              static_cast<unsigned long long>(written), file.c_str());
  return absl::OkStatus();
}

absl::Status RestoreFromFile(net::Client& client, size_t max_command_bytes,
                             const std::string& file) {
  char head[16] = {};
  {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", file));
    in.read(head, sizeof(head));
  }
  uint64_t applied = 0;
  const server::LoadSink sink = [&](std::vector<sm::Statement> statements) {
    v1::ExecuteRequest r;
    r.set_transaction(true);
    for (const sm::Statement& s : statements) {
      v1::Statement* out = r.add_statements();
      out->set_sql(s.sql);
      for (const sm::Value& v : s.positional) {
        server::ToProto(v, out->add_positional());
      }
    }
    absl::Status s = Outcome(client.Execute(std::move(r)));
    if (s.ok()) ++applied;
    return s;
  };
  absl::StatusOr<server::LoadTotals> totals =
      server::IsSqliteFile(absl::string_view(head, sizeof(head)))
          ? server::LoadSqliteFile(file, max_command_bytes, sink)
          : server::LoadSqlText(file, max_command_bytes, sink);
  if (!totals.ok()) {
    return absl::Status(totals.status().code(),
                        absl::StrCat(totals.status().message(), " (", applied,
                                     " commands applied before it)"));
  }
  std::printf("restored %llu statements (%llu rows) in %llu commands\n",
              static_cast<unsigned long long>(totals->statements),
              static_cast<unsigned long long>(totals->rows),
              static_cast<unsigned long long>(totals->commands));
  return absl::OkStatus();
}

absl::Status Dump(net::Client& client, v1::Consistency consistency,
                  std::FILE* out) {
  absl::StatusOr<v1::QueryResponse> tables = Read(
      client,
      "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT "
      "LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
      {}, consistency);
  if (!tables.ok()) return tables.status();
  // A virtual table's shadow tables are its own business.
  std::vector<std::string> virtual_tables;
  for (const v1::Row& t : tables->rows()) {
    if (absl::StartsWithIgnoreCase(t.values(1).text(), "CREATE VIRTUAL")) {
      virtual_tables.push_back(t.values(0).text() + "_");
    }
  }
  std::fprintf(out, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
  for (const v1::Row& t : tables->rows()) {
    const std::string& name = t.values(0).text();
    bool shadow = false;
    for (const std::string& v : virtual_tables) {
      shadow = shadow || absl::StartsWith(name, v);
    }
    if (shadow) continue;
    std::fprintf(out, "%s;\n", t.values(1).text().c_str());
    absl::StatusOr<v1::QueryResponse> rows =
        Read(client, "SELECT * FROM " + Quoted(name), {}, consistency);
    if (!rows.ok()) return rows.status();
    for (const v1::Row& row : rows->rows()) {
      std::vector<std::string> values;
      for (const v1::Value& v : row.values()) values.push_back(SqlLiteral(v));
      std::fprintf(out, "INSERT INTO %s VALUES(%s);\n", Quoted(name).c_str(),
                   absl::StrJoin(values, ",").c_str());
    }
  }
  absl::StatusOr<v1::QueryResponse> rest =
      Read(client,
           "SELECT sql FROM sqlite_schema WHERE type IN ('index', 'view', "
           "'trigger') AND sql IS NOT NULL ORDER BY rowid",
           {}, consistency);
  if (!rest.ok()) return rest.status();
  for (const v1::Row& r : rest->rows()) {
    std::fprintf(out, "%s;\n", r.values(0).text().c_str());
  }
  std::fprintf(out, "COMMIT;\n");
  return absl::OkStatus();
}

bool ReadCsvRecord(std::istream& in, std::vector<std::string>* fields) {
  fields->clear();
  if (in.peek() == std::char_traits<char>::eof()) return false;
  std::string field;
  bool quoted = false;
  bool was_quoted = false;
  char c;
  while (in.get(c)) {
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (in.peek() == '"') {
        field += '"';
        in.get(c);
      } else {
        quoted = false;
      }
    } else if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && in.peek() == '\n') in.get(c);
      break;
    } else {
      field += c;
    }
  }
  fields->push_back(std::move(field));
  return true;
}

absl::Status ImportCsv(net::Client& client, const std::string& authorization,
                       const std::string& file, const std::string& table) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", file));
  absl::StatusOr<v1::QueryResponse> exists =
      Read(client,
           "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
           "name = ?",
           {Text(table)});
  if (!exists.ok()) return exists.status();
  std::vector<std::string> record;
  size_t columns = 0;
  uint64_t line = 0;
  if (exists->rows(0).values(0).integer() == 0) {
    if (!ReadCsvRecord(in, &record)) {
      return absl::InvalidArgumentError("an empty file names no columns");
    }
    ++line;
    std::vector<std::string> names;
    for (const std::string& n : record) names.push_back(Quoted(n) + " TEXT");
    v1::ExecuteRequest create;
    create.add_statements()->set_sql(absl::StrCat(
        "CREATE TABLE ", Quoted(table), " (", absl::StrJoin(names, ", "), ")"));
    absl::Status s = Outcome(client.Execute(create));
    if (!s.ok()) return s;
    columns = record.size();
  } else {
    absl::StatusOr<v1::QueryResponse> info = Read(
        client, "SELECT count(*) FROM pragma_table_info(?)", {Text(table)});
    if (!info.ok()) return info.status();
    columns = static_cast<size_t>(info->rows(0).values(0).integer());
  }
  std::string marks = "?";
  for (size_t i = 1; i < columns; ++i) marks += ", ?";
  const std::string insert =
      absl::StrCat("INSERT INTO ", Quoted(table), " VALUES (", marks, ")");

  constexpr size_t kRowsPerRequest = 500;
  constexpr size_t kInFlight = 16;
  std::mutex mu;
  std::condition_variable cv;
  size_t in_flight = 0;
  absl::Status first_error;
  net::ExecuteStreamClient stream(
      &client.StubFor(client.current()),
      [&](uint64_t, absl::StatusOr<v1::ExecuteResponse> r) {
        absl::Status s = Outcome(r);
        std::lock_guard<std::mutex> l(mu);
        if (!s.ok() && first_error.ok()) first_error = s;
        --in_flight;
        cv.notify_all();
      },
      authorization);
  uint64_t rows = 0, tag = 0;
  v1::ExecuteRequest batch;
  batch.set_transaction(true);
  auto send = [&]() -> absl::Status {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return in_flight < kInFlight; });
    if (!first_error.ok()) return first_error;
    ++in_flight;
    l.unlock();
    if (!stream.Send(++tag, std::move(batch))) {
      return absl::UnavailableError("the stream ended");
    }
    batch = v1::ExecuteRequest();
    batch.set_transaction(true);
    return absl::OkStatus();
  };
  absl::Status failed;
  while (failed.ok() && ReadCsvRecord(in, &record)) {
    ++line;
    if (record.size() != columns) {
      failed = absl::InvalidArgumentError(
          absl::StrCat(file, ":", line, ": ", record.size(),
                       " fields, the table has ", columns, " columns"));
      break;
    }
    v1::Statement* st = batch.add_statements();
    st->set_sql(insert);
    for (std::string& f : record) {
      if (sm::IsValidUtf8(f)) {
        st->add_positional()->set_text(std::move(f));
      } else {
        st->add_positional()->set_text_bytes(std::move(f));
      }
    }
    ++rows;
    if (batch.statements_size() >= static_cast<int>(kRowsPerRequest)) {
      failed = send();
    }
  }
  if (failed.ok() && batch.statements_size() > 0) failed = send();
  const absl::Status closed = stream.Close();
  if (failed.ok()) failed = first_error;
  if (failed.ok()) failed = closed;
  if (!failed.ok()) return failed;
  std::printf("imported %llu rows into %s\n",
              static_cast<unsigned long long>(rows), table.c_str());
  return absl::OkStatus();
}

}  // namespace raftsql::tools
