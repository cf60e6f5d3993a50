// The TinyLLM runtime on the hub's model (issue 18): prefill and decode
// tokens/s, one decision's latency (7 actions scored, with and without the
// rationale), and the memory-bandwidth limit for this model (its bytes
// read once per decoded token). bench/llama_compare.sh runs PyTorch's
// eager forward pass of the same file beside it.
//
//   bazel-bin/bench/llama_benchmark [--model=ai/model/hub-actions.gguf]
//       [benchmark flags]
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "ai/action_scorer.h"
#include "ai/llama.h"
#include "ai/tokenizer.h"

namespace raftsql::ai {
namespace {

std::string g_model_path = "ai/model/hub-actions.gguf";

struct Loaded {
  std::string bytes;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> model;
};

const Loaded& Model() {
  static Loaded* loaded = [] {
    auto* l = new Loaded;
    absl::StatusOr<std::string> bytes =
        ReadWholeFile(g_model_path, kMaxGgufFileBytes);
    l->bytes = bytes.ok() ? *std::move(bytes) : "";
    absl::StatusOr<GgufFile> f =
        bytes.ok() ? ParseGguf(l->bytes) : bytes.status();
    if (!f.ok()) {
      std::fprintf(stderr, "%s: %s\n", g_model_path.c_str(),
                   f.status().ToString().c_str());
      std::exit(2);
    }
    l->tokenizer = std::make_unique<Tokenizer>(*Tokenizer::FromGguf(*f));
    l->model = *LlamaModel::FromGguf(*std::move(f), l->bytes);
    return l;
  }();
  return *loaded;
}

std::vector<int32_t> Tokens(size_t n) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) {
    t[i] = static_cast<int32_t>((i * 37 + 5) % Model().model->config().vocab);
  }
  return t;
}

void BM_Prefill(benchmark::State& state) {
  std::unique_ptr<LlamaSession> s = *LlamaSession::Create(*Model().model, 128);
  const std::vector<int32_t> tokens = Tokens(state.range(0));
  std::vector<float> logits;
  for (auto _ : state) {
    s->Truncate(0);
    benchmark::DoNotOptimize(s->Forward(tokens, false, &logits));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Prefill)->Arg(16)->Arg(64);

// One token at position 48 (after a 48-token prompt), again and again.
void BM_Decode(benchmark::State& state) {
  std::unique_ptr<LlamaSession> s = *LlamaSession::Create(*Model().model, 128);
  std::vector<float> logits;
  (void)s->Forward(Tokens(48), false, &logits);
  const int32_t token = 7;
  for (auto _ : state) {
    s->Truncate(48);
    benchmark::DoNotOptimize(s->Forward({&token, 1}, false, &logits));
  }
  state.SetItemsProcessed(state.iterations());
  // The model's bytes, read once per decoded token.
  state.counters["model_MB"] = Model().bytes.size() / 1e6;
}
BENCHMARK(BM_Decode);

void BM_Decision(benchmark::State& state) {
  std::unique_ptr<ActionScorer> scorer =
      *ActionScorer::Create(*Model().model, *Model().tokenizer);
  const std::vector<std::string> actions = {
      "none", "cool", "throttle", "shutdown", "recalibrate", "inspect", "ping"};
  const std::string situation =
      "pump-17 temperature 86.4C mean 71.2 z 1.9 rate +2.3/min stuck no gap "
      "4s";
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        scorer->Decide(situation, actions, state.range(0)));
  }
}
BENCHMARK(BM_Decision)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// Reads 256 MiB (more than the caches) as floats: the bytes/s a decode
// that reads its weights once per token cannot beat.
void BM_ReadBandwidth(benchmark::State& state) {
  std::vector<float> big((256 << 20) / sizeof(float), 1.0f);
  for (auto _ : state) {
    float sum = 0;
    for (size_t i = 0; i < big.size(); i += 8) {
      sum += big[i] + big[i + 1] + big[i + 2] + big[i + 3] + big[i + 4] +
             big[i + 5] + big[i + 6] + big[i + 7];
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * big.size() * sizeof(float));
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace raftsql::ai

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--model=", 8) == 0) {
      raftsql::ai::g_model_path = argv[i] + 8;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
