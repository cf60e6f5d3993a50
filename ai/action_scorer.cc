#include "ai/action_scorer.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ai/sampler.h"

namespace raftsql::ai {
namespace {

// log softmax(row)[token], in double.
double LogProbability(std::span<const float> row, int32_t token) {
  const float max = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float v : row) sum += std::exp(static_cast<double>(v) - max);
  return static_cast<double>(row[token]) - max - std::log(sum);
}

size_t CommonPrefix(const std::vector<int32_t>& a,
                    const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ActionScorer>> ActionScorer::Create(
    const LlamaModel& model, const Tokenizer& tokenizer) {
  if (tokenizer.size() != model.config().vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("the tokenizer has ", tokenizer.size(),
                     " pieces, the model ", model.config().vocab));
  }
  absl::StatusOr<std::unique_ptr<LlamaSession>> session =
      LlamaSession::Create(model, kContext);
  if (!session.ok()) return session.status();
  return std::unique_ptr<ActionScorer>(
      new ActionScorer(tokenizer, *std::move(session)));
}

absl::StatusOr<double> ActionScorer::Continue(
    const std::vector<int32_t>& tokens, size_t score_from,
    std::vector<int32_t>* held) {
  if (score_from == 0 || score_from >= tokens.size()) {
    return absl::InternalError("a continuation of no tokens");
  }
  // Feed from where the session's tokens differ, and from the last one
  // before those scored at least: its logits predict the first.
  const size_t from = std::min(CommonPrefix(tokens, *held), score_from - 1);
  session_->Truncate(from);
  held->resize(from);
  const std::span<const int32_t> feed(tokens.data() + from,
                                      tokens.size() - from);
  if (absl::Status s = session_->Forward(feed, true, &logits_); !s.ok()) {
    return s;
  }
  held->insert(held->end(), feed.begin(), feed.end());
  const size_t vocab = tokenizer_.size();
  double sum = 0;
  for (size_t i = score_from; i < tokens.size(); ++i) {
    const std::span<const float> row(&logits_[(i - 1 - from) * vocab], vocab);
    sum += LogProbability(row, tokens[i]);
  }
  return sum;
}

absl::StatusOr<ModelVerdict> ActionScorer::Decide(
    std::string_view situation, std::span<const std::string> actions,
    bool rationale) {
  if (actions.empty() || actions.size() > kMaxActions) {
    return absl::InvalidArgumentError(absl::StrCat(
        actions.size(), " candidate actions, not 1 to ", kMaxActions));
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& a : actions) {
    if (a.empty() || a.size() > kMaxActionBytes ||
        a.find('\n') != std::string::npos || !seen.insert(a).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate action \"", a.substr(0, kMaxActionBytes),
                       "\" is empty, longer than ", kMaxActionBytes,
                       " bytes, multi-line or repeated"));
    }
  }
  const std::string prompt =
      absl::StrCat("situation: ", std::string(situation), "\naction:");
  auto encode =
      [&](const std::string& text) -> absl::StatusOr<std::vector<int32_t>> {
    absl::StatusOr<std::vector<int32_t>> t = tokenizer_.Encode(text, true);
    if (!t.ok()) return t.status();
    if (t->size() > session_->context()) {
      return absl::OutOfRangeError(
          absl::StrCat("the situation takes ", t->size(),
                       " tokens, over the context of ", session_->context()));
    }
    return t;
  };
  absl::StatusOr<std::vector<int32_t>> prompt_tokens = encode(prompt);
  if (!prompt_tokens.ok()) return prompt_tokens.status();
  ModelVerdict v;
  std::vector<int32_t> held;
  session_->Truncate(0);
  for (const std::string& a : actions) {
    absl::StatusOr<std::vector<int32_t>> tokens =
        encode(absl::StrCat(prompt, " ", a, "\n"));
    if (!tokens.ok()) return tokens.status();
    // The continuation's tokens: after the prompt's, or after what the
    // two share if the prompt's last token merged into the action.
    absl::StatusOr<double> ll =
        Continue(*tokens, CommonPrefix(*tokens, *prompt_tokens), &held);
    if (!ll.ok()) return ll.status();
    v.scores.push_back({a, *ll});
  }
  const auto best = std::max_element(
      v.scores.begin(), v.scores.end(), [](const auto& a, const auto& b) {
        return a.log_likelihood < b.log_likelihood;
      });
  v.action = best->action;
  double sum = 0;
  for (const ScoredAction& s : v.scores) {
    sum += std::exp(s.log_likelihood - best->log_likelihood);
  }
  v.probability = 1 / sum;
  if (!rationale) return v;

  absl::StatusOr<std::vector<int32_t>> tokens =
      encode(absl::StrCat(prompt, " ", v.action, "\nwhy:"));
  if (!tokens.ok()) return tokens.status();
  if (absl::StatusOr<double> ll = Continue(*tokens, tokens->size() - 1, &held);
      !ll.ok()) {
    return ll.status();
  }
  std::vector<int32_t> why;
  const size_t vocab = tokenizer_.size();
  std::span<const float> last(&logits_[logits_.size() - vocab], vocab);
  while (why.size() < kMaxRationaleTokens &&
         session_->position() < session_->context()) {
    const int32_t next = Greedy(last);
    if (next == tokenizer_.eos()) break;
    const std::string& piece = tokenizer_.piece(next);
    if (piece.find('\n') != std::string::npos || piece == "<0x0A>") break;
    why.push_back(next);
    if (absl::Status s = session_->Forward({&why.back(), 1}, false, &logits_);
        !s.ok()) {
      return s;
    }
    last = std::span<const float>(logits_.data(), vocab);
  }
  absl::StatusOr<std::string> text = tokenizer_.Decode(why);
  if (!text.ok()) return text.status();
  v.rationale = *std::move(text);
  return v;
}

}  // namespace raftsql::ai
