// The hub's models (issue 18, part 3). A replicated table names each model
// and its SHA-256; the file itself is on each node's disk
// (<model_dir>/<name>.gguf, installed by the operator like any binary), so
// the log never carries megabytes of weights, and a node uses a file only
// if its bytes hash to what every node agreed on.
//
//   ai_models  name, sha256 (64 lower-case hex digits), state ('staged',
//              'active' or 'retired'), at_ms
//
// A model is staged (a row), then activated (it becomes the one active
// model, the one before it retired), each through the ordinary write path
// (the shell's .model commands). The leader's DecisionMaker asks the
// registry for the active model before each evaluation: the registry
// reads the table, and loads and verifies the file only when the table
// names another model or hash than the one it holds.
//
// Thread-safety: one thread (the DecisionMaker's).
#ifndef RAFTSQL_AI_MODEL_REGISTRY_H_
#define RAFTSQL_AI_MODEL_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ai/action_scorer.h"
#include "ai/llama.h"
#include "ai/rules.h"
#include "ai/tokenizer.h"
#include "sm/command.h"

namespace raftsql::ai {

inline constexpr uint64_t kMaxModelBytes = kMaxGgufFileBytes;
inline constexpr size_t kMaxModelNameBytes = 64;

// The lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// Stages `name` with `sha256`; INVALID_ARGUMENT for a bad name (1 to 64
// bytes of [A-Za-z0-9_.-]) or hash.
absl::StatusOr<sm::Command> StageModelCommand(const std::string& name,
                                              const std::string& sha256,
                                              int64_t now_ms);
// Makes `name` the active model (the active one is retired); the caller
// checks that it is staged (ModelsQuery).
sm::Command ActivateModelCommand(const std::string& name, int64_t now_ms);
// name, sha256, state, at_ms of every model.
sm::Statement ModelsQuery();

// A model loaded and verified.
struct LoadedModel {
  std::string name, sha256;
  std::string bytes;  // The file; the model's tensors point into it.
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<ActionScorer> scorer;
};

// Loads <dir>/<name>.gguf and checks that it hashes to `sha256`
// (FAILED_PRECONDITION if not, or if missing; INVALID_ARGUMENT if it is
// no model with a vocabulary; bounded by kMaxModelBytes).
absl::StatusOr<std::unique_ptr<LoadedModel>> LoadModel(
    const std::string& dir, const std::string& name, const std::string& sha256);

class ModelRegistry {
 public:
  // A load that failed is tried again after this long.
  static constexpr int64_t kRetryMs = 10'000;

  explicit ModelRegistry(std::string dir) : dir_(std::move(dir)) {}

  // The active model: NOT_FOUND if none is active (or the table is
  // missing), else the load's error (remembered for kRetryMs).
  absl::StatusOr<LoadedModel*> Active(const QueryFn& query, int64_t now_ms);
  // The model loaded (null if none), and why the last load failed (OK if
  // it did not, or a model is loaded since).
  const LoadedModel* loaded() const { return loaded_.get(); }
  const absl::Status& failure() const { return failed_; }

 private:
  const std::string dir_;
  std::unique_ptr<LoadedModel> loaded_;
  // The last load that failed: which, why, when.
  std::string failed_name_, failed_sha_;
  absl::Status failed_;
  int64_t failed_ms_ = 0;
};

// A rule evaluation's ModelFn (rules.h): the active model, looked up in
// `registry` at the first situation it is handed (once per evaluation),
// scoring the candidates with its rationale. The function refers to
// `registry` and `query`, which must outlive it.
ModelFn ChooseWith(ModelRegistry* registry, const QueryFn& query,
                   int64_t now_ms);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_MODEL_REGISTRY_H_
