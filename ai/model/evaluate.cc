// Measures the hub's action model with the runtime itself (issue 18):
// renders each held-out situation in C++ and checks it is the training
// corpus's text, scores the allow-listed actions, and prints the model's
// accuracy beside the rules baseline's (overall, and on the situations
// that call for an action), per action precision and recall, and the
// latency of one decision.
//
// Usage: evaluate MODEL.gguf HELD_OUT.tsv [MIN_ACCURACY]
//   (HELD_OUT.tsv: situations.py's write_held_out.) Exits 1 if a
//   rendering differs, the model's accuracy is below MIN_ACCURACY, or the
//   rules baseline does as well.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "ai/action_scorer.h"
#include "ai/situation.h"
#include "ai/tool_files.h"

namespace raftsql::ai {
namespace {

const std::vector<std::string> kActions = {
    "none", "cool", "throttle", "shutdown", "recalibrate", "inspect", "ping"};

struct Example {
  Situation situation;
  std::string text, truth, rules;
};

bool Parse(const std::string& line, Example* e) {
  std::vector<std::string> f = absl::StrSplit(line, '\t');
  if (f.size() != 11) return false;
  Situation& s = e->situation;
  s.device = f[0];
  s.sensor = f[1];
  int stuck = 0;
  if (!absl::SimpleAtod(f[2], &s.value) || !absl::SimpleAtod(f[3], &s.mean) ||
      !absl::SimpleAtod(f[4], &s.z) || !absl::SimpleAtod(f[5], &s.rate) ||
      !absl::SimpleAtoi(f[6], &stuck) ||
      !absl::SimpleAtoi(f[7], &s.gap_seconds)) {
    return false;
  }
  s.stuck = stuck != 0;
  e->text = f[8];
  e->truth = f[9];
  e->rules = f[10];
  return true;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf HELD_OUT.tsv [MIN_ACCURACY]\n",
                 argv[0]);
    return 2;
  }
  const double min_accuracy = argc > 3 ? std::atof(argv[3]) : 0;
  const std::string bytes = ReadFileOrExit(argv[1]);
  absl::StatusOr<GgufFile> file = ParseGguf(bytes);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromGguf(*file);
  absl::StatusOr<std::unique_ptr<LlamaModel>> model =
      LlamaModel::FromGguf(*file, bytes);
  if (!tokenizer.ok() || !model.ok()) {
    std::fprintf(stderr, "%s %s\n", tokenizer.status().ToString().c_str(),
                 model.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<ActionScorer> scorer =
      *ActionScorer::Create(**model, *tokenizer);
  std::ifstream in(argv[2]);
  std::string line;
  int n = 0, rendered_differently = 0, model_right = 0, rules_right = 0;
  int acting = 0, model_acting = 0, rules_acting = 0;
  // Per action: [truth][chosen] counts.
  std::map<std::string, std::map<std::string, int>> model_m, rules_m;
  std::vector<double> ms, ms_why;
  while (std::getline(in, line)) {
    Example e;
    if (!Parse(line, &e)) {
      std::fprintf(stderr, "bad line: %s\n", line.c_str());
      return 2;
    }
    const std::string text = Render(e.situation);
    if (text != e.text) {
      if (++rendered_differently <= 5) {
        std::printf("rendered \"%s\", corpus \"%s\"\n", text.c_str(),
                    e.text.c_str());
      }
    }
    const bool why = n % 10 == 0;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<ModelVerdict> v = scorer->Decide(text, kActions, why);
    const double took = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    if (!v.ok()) {
      std::fprintf(stderr, "%s: %s\n", text.c_str(),
                   v.status().ToString().c_str());
      return 1;
    }
    (why ? ms_why : ms).push_back(took);
    if (why && n < 50) {
      std::printf("  %s -> %s (p %.2f; truth %s): why: %s\n", text.c_str(),
                  v->action.c_str(), v->probability, e.truth.c_str(),
                  v->rationale.c_str());
    }
    ++n;
    model_right += v->action == e.truth;
    rules_right += e.rules == e.truth;
    if (e.truth != "none") {
      ++acting;
      model_acting += v->action == e.truth;
      rules_acting += e.rules == e.truth;
    }
    ++model_m[e.truth][v->action];
    ++rules_m[e.truth][e.rules];
  }
  const double accuracy = n > 0 ? double(model_right) / n : 0;
  std::printf(
      "%d held-out situations (%d call for an action): model %.3f "
      "(acting %.3f), rules %.3f (acting %.3f); %d rendered differently\n",
      n, acting, accuracy, acting ? double(model_acting) / acting : 0,
      n ? double(rules_right) / n : 0,
      acting ? double(rules_acting) / acting : 0, rendered_differently);
  for (const std::string& a : kActions) {
    auto pr = [&](std::map<std::string, std::map<std::string, int>>& m) {
      int tp = m[a][a], chosen = 0, truth = 0;
      for (auto& [t, row] : m) chosen += row[a];
      for (auto& [c, k] : m[a]) truth += k;
      return std::make_pair(chosen ? double(tp) / chosen : 1.0,
                            truth ? double(tp) / truth : 1.0);
    };
    auto [mp, mr] = pr(model_m);
    auto [rp, rr] = pr(rules_m);
    std::printf("  %-12s model precision %.2f recall %.2f | rules %.2f %.2f\n",
                a.c_str(), mp, mr, rp, rr);
  }
  std::printf(
      "decision latency (7 actions scored): p50 %.2f ms, p99 %.2f ms; with "
      "the rationale: p50 %.2f ms, p99 %.2f ms\n",
      Percentile(ms, 0.5), Percentile(ms, 0.99), Percentile(ms_why, 0.5),
      Percentile(ms_why, 0.99));
  // The model must be worth having: at least MIN_ACCURACY, and better
  // than the rules an operator writes.
  if (rendered_differently > 0 || accuracy < min_accuracy ||
      model_right <= rules_right) {
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace raftsql::ai

int main(int argc, char** argv) { return raftsql::ai::Main(argc, argv); }
