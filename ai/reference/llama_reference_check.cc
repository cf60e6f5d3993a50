// Checks the runtime against llama_reference.py's PyTorch computation:
// the logits at every position of the prompt within a tolerance, and the
// tokens greedy decoding chooses (here with the KV cache, one token at a
// time; the reference recomputed the whole sequence at every step).
//
// Usage: llama_reference_check MODEL.gguf EXPECTED TOLERANCE
// Prints the largest difference; exits 1 if a check fails.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ai/llama.h"
#include "ai/sampler.h"
#include "ai/tool_files.h"

namespace raftsql::ai {
namespace {

int Main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf EXPECTED TOLERANCE\n", argv[0]);
    return 2;
  }
  const std::string model_bytes = ReadFileOrExit(argv[1]);
  const std::string expected = ReadFileOrExit(argv[2]);
  const double tolerance = std::atof(argv[3]);
  absl::StatusOr<std::unique_ptr<LlamaModel>> model =
      LlamaModel::Load(model_bytes);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  RecordReader in(expected);
  const auto n = in.Take<uint32_t>();
  const auto vocab = in.Take<uint32_t>();
  const auto steps = in.Take<uint32_t>();
  std::vector<int32_t> prompt(n);
  for (int32_t& t : prompt) t = in.Take<int32_t>();
  std::vector<double> want(size_t{n} * vocab);
  for (double& v : want) v = in.Take<double>();
  std::vector<int32_t> greedy(8 + steps);
  for (int32_t& t : greedy) t = in.Take<int32_t>();
  if ((*model)->config().vocab != vocab) {
    std::fprintf(stderr, "vocabulary %u, model %llu\n", vocab,
                 static_cast<unsigned long long>((*model)->config().vocab));
    return 1;
  }

  std::unique_ptr<LlamaSession> session = *LlamaSession::Create(**model);
  std::vector<float> logits;
  if (absl::Status s = session->Forward(prompt, true, &logits); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(logits[i] - want[i]));
  }
  bool ok = worst <= tolerance;

  // Greedy: the first 8 tokens as a prompt, then one at a time.
  session->Truncate(0);
  std::vector<int32_t> tokens(greedy.begin(), greedy.begin() + 8);
  std::vector<float> last;
  (void)session->Forward(tokens, false, &last);
  for (uint32_t i = 0; i < steps; ++i) {
    const int32_t next = Greedy(last);
    tokens.push_back(next);
    (void)session->Forward({&tokens.back(), 1}, false, &last);
  }
  const bool same = tokens == greedy;
  ok = ok && same;
  std::printf(
      "%s: %u positions x %u logits, max |difference| %.3g "
      "(tolerance %.3g); %u greedy tokens %s\n",
      argv[1], n, vocab, worst, tolerance, steps,
      same ? "identical" : "DIFFER");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace raftsql::ai

int main(int argc, char** argv) { return raftsql::ai::Main(argc, argv); }
