// The model's part in a decision (issue 18, part 3): it scores the
// allow-listed actions, it never writes one. For a situation rendered as
// text (ai/model/situations.py's format), the prompt is
// "situation: <text>\naction:" and each candidate's score is the
// log-likelihood of its continuation " <action>\n", computed after the
// prompt, which is fed once (the session keeps its cache, and each
// candidate goes back to it with Truncate). The best-scored action and
// the candidates' softmax probability are the verdict; the model's own
// next line ("why: ...", greedy, at most kMaxRationaleTokens) is only the
// rationale the audit row keeps.
//
// Thread-safety: one scorer per thread (it owns a session); the model
// and tokenizer are shared.
#ifndef RAFTSQL_AI_ACTION_SCORER_H_
#define RAFTSQL_AI_ACTION_SCORER_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ai/llama.h"
#include "ai/tokenizer.h"

namespace raftsql::ai {

struct ScoredAction {
  std::string action;
  double log_likelihood = 0;
};

struct ModelVerdict {
  std::string action;                // The best-scored candidate.
  double probability = 0;            // Its share of the candidates' likelihood.
  std::vector<ScoredAction> scores;  // In the candidates' order.
  std::string rationale;             // The model's "why", if asked for.
};

class ActionScorer {
 public:
  static constexpr size_t kMaxActions = 64;
  static constexpr size_t kMaxActionBytes = 64;
  static constexpr size_t kMaxRationaleTokens = 32;
  // Positions of the scorer's session.
  static constexpr uint64_t kContext = 256;

  // The model and tokenizer must outlive the scorer and share a
  // vocabulary (INVALID_ARGUMENT if their sizes differ).
  static absl::StatusOr<std::unique_ptr<ActionScorer>> Create(
      const LlamaModel& model, const Tokenizer& tokenizer);

  // INVALID_ARGUMENT for no candidates, too many, an empty, long,
  // repeated or multi-line one; OUT_OF_RANGE if the situation does not
  // fit the context.
  absl::StatusOr<ModelVerdict> Decide(std::string_view situation,
                                      std::span<const std::string> actions,
                                      bool rationale);

 private:
  ActionScorer(const Tokenizer& tokenizer,
               std::unique_ptr<LlamaSession> session)
      : tokenizer_(tokenizer), session_(std::move(session)) {}
  // Feeds `tokens` from where they differ from what the session holds
  // (`held`, updated), and returns the log-likelihood of those from
  // `score_from` on (at least 1, below their count).
  absl::StatusOr<double> Continue(const std::vector<int32_t>& tokens,
                                  size_t score_from,
                                  std::vector<int32_t>* held);

  const Tokenizer& tokenizer_;
  std::unique_ptr<LlamaSession> session_;
  std::vector<float> logits_;  // Scratch.
};

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_ACTION_SCORER_H_
