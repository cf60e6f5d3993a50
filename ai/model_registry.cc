#include "ai/model_registry.h"

#include <openssl/evp.h>

#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace raftsql::ai {
namespace {

using sm::Statement;
using sm::Value;

Value Text(std::string_view s) { return Value::Text(std::string(s)); }

absl::Status ValidateModelName(const std::string& name) {
  bool ok =
      !name.empty() && name.size() <= kMaxModelNameBytes && name[0] != '.';
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("a model's name is 1 to ", kMaxModelNameBytes,
                     " bytes of [A-Za-z0-9_.-], not starting with '.'"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), out, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    absl::StrAppend(&hex, absl::Hex(out[i], absl::kZeroPad2));
  }
  return hex;
}

absl::StatusOr<sm::Command> StageModelCommand(const std::string& name,
                                              const std::string& sha256,
                                              int64_t now_ms) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  bool hex = sha256.size() == 64;
  for (char c : sha256) hex = hex && absl::ascii_isxdigit(c);
  if (!hex) {
    return absl::InvalidArgumentError(
        "a model's sha256 is 64 hexadecimal digits");
  }
  sm::Command c = SchemaCommand();  // ai_models comes with the ai tables.
  c.statements.push_back(Statement{
      "INSERT INTO ai_models(name, sha256, state, at_ms) VALUES (?1, ?2, "
      "'staged', ?3) ON CONFLICT(name) DO UPDATE SET sha256 = ?2, "
      "state = 'staged', at_ms = ?3",
      {Text(name), Text(absl::AsciiStrToLower(sha256)), Value::Integer(now_ms)},
      {}});
  c.transaction = true;
  c.timestamp_ms = now_ms;
  return c;
}

sm::Command ActivateModelCommand(const std::string& name, int64_t now_ms) {
  sm::Command c;
  c.statements.push_back(Statement{
      "UPDATE ai_models SET state = CASE WHEN name = ?1 THEN 'active' ELSE "
      "'retired' END, at_ms = ?2 WHERE name = ?1 OR state = 'active'",
      {Text(name), Value::Integer(now_ms)},
      {}});
  c.transaction = true;
  c.timestamp_ms = now_ms;
  return c;
}

sm::Statement ModelsQuery() {
  return Statement{
      "SELECT name, sha256, state, at_ms FROM ai_models ORDER BY name", {}, {}};
}

absl::StatusOr<std::unique_ptr<LoadedModel>> LoadModel(
    const std::string& dir, const std::string& name,
    const std::string& sha256) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  const std::string path = absl::StrCat(dir, "/", name, ".gguf");
  auto m = std::make_unique<LoadedModel>();
  absl::StatusOr<std::string> bytes = ReadWholeFile(path, kMaxModelBytes);
  if (bytes.status().code() == absl::StatusCode::kNotFound) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", name, ": no file ", path));
  }
  if (!bytes.ok()) {
    return absl::Status(
        bytes.status().code(),
        absl::StrCat("model ", name, ": ", bytes.status().message()));
  }
  m->bytes = *std::move(bytes);
  m->name = name;
  m->sha256 = Sha256Hex(m->bytes);
  if (m->sha256 != absl::AsciiStrToLower(sha256)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", name, ": ", path, " has SHA-256 ", m->sha256,
                     ", not the ", sha256, " the cluster agreed on"));
  }
  absl::StatusOr<GgufFile> file = ParseGguf(m->bytes);
  if (!file.ok()) return file.status();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromGguf(*file);
  if (!tokenizer.ok()) return tokenizer.status();
  m->tokenizer = std::make_unique<Tokenizer>(*std::move(tokenizer));
  absl::StatusOr<std::unique_ptr<LlamaModel>> model =
      LlamaModel::FromGguf(*std::move(file), m->bytes);
  if (!model.ok()) return model.status();
  m->model = *std::move(model);
  absl::StatusOr<std::unique_ptr<ActionScorer>> scorer =
      ActionScorer::Create(*m->model, *m->tokenizer);
  if (!scorer.ok()) return scorer.status();
  m->scorer = *std::move(scorer);
  return m;
}

absl::StatusOr<LoadedModel*> ModelRegistry::Active(const QueryFn& query,
                                                   int64_t now_ms) {
  absl::StatusOr<sm::QueryResult> r = query(Statement{
      "SELECT name, sha256 FROM ai_models WHERE state = 'active' ORDER BY "
      "at_ms DESC, name LIMIT 1",
      {},
      {}});
  if (!r.ok() || r->rows.empty()) {
    loaded_.reset();
    failed_ = absl::OkStatus();
    return absl::NotFoundError("no active model");
  }
  const auto text = [](const Value& v) {
    return v.type == Value::Type::kText ? v.bytes : std::string();
  };
  const std::string name = text(r->rows[0][0]);
  const std::string sha = absl::AsciiStrToLower(text(r->rows[0][1]));
  if (loaded_ != nullptr && loaded_->name == name && loaded_->sha256 == sha) {
    return loaded_.get();
  }
  loaded_.reset();
  if (!failed_.ok() && failed_name_ == name && failed_sha_ == sha &&
      now_ms - failed_ms_ < kRetryMs) {
    return failed_;
  }
  absl::StatusOr<std::unique_ptr<LoadedModel>> m = LoadModel(dir_, name, sha);
  if (!m.ok()) {
    failed_name_ = name;
    failed_sha_ = sha;
    failed_ = m.status();
    failed_ms_ = now_ms;
    return failed_;
  }
  failed_ = absl::OkStatus();
  loaded_ = *std::move(m);
  return loaded_.get();
}

ModelFn ChooseWith(ModelRegistry* registry, const QueryFn& query,
                   int64_t now_ms) {
  auto active = std::make_shared<std::optional<absl::StatusOr<LoadedModel*>>>();
  return [registry, &query, now_ms, active](
             const std::string& situation,
             const std::vector<std::string>& candidates)
             -> absl::StatusOr<ModelChoice> {
    if (!active->has_value()) *active = registry->Active(query, now_ms);
    if (!(*active)->ok()) return (*active)->status();
    const LoadedModel& m = *active->value().value();
    absl::StatusOr<ModelVerdict> v =
        m.scorer->Decide(situation, candidates, /*rationale=*/true);
    if (!v.ok()) return v.status();
    return ModelChoice{v->action, v->probability, v->rationale,
                       m.name + "@" + m.sha256.substr(0, 12)};
  };
}

}  // namespace raftsql::ai
