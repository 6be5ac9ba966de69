// Throughput of each attack on the default model at batch 256, next to the raw passes it needs
// (T forward + input-gradient passes and 2 plain forward passes for a T-step attack), so the
// engine's overhead shows; and early stop's speed-up on real CIFAR-10 test images.
//
//   build/sdsgsm_bench_attacks            (uses data/cifar10 when present, else random images)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "bench_util.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm_config.hpp"

namespace {

using sdsgsm_bench::default_model;

constexpr int64_t kBatch = 256;
constexpr int kThreads = 2;

const std::pair<torch::Tensor, torch::Tensor>& batch() {
  static std::pair<torch::Tensor, torch::Tensor> b = [] {
    sdsgsm::fs::path dir = sdsgsm::fs::path(SDSGSM_SOURCE_MODEL_DIR).parent_path() / "data" / "cifar10";
    if (sdsgsm::fs::exists(dir / "test_batch.bin")) {
      auto d = sdsgsm::open_dataset(dir, sdsgsm::Split::Test, 0, kBatch);
      return std::make_pair(d.float_images(0, kBatch), d.labels.clone());
    }
    torch::manual_seed(1);
    return std::make_pair(torch::rand({kBatch, 3, 32, 32}), torch::randint(0, 10, {kBatch}, torch::kInt64));
  }();
  return b;
}

void report(benchmark::State& state) {
  state.counters["img/s"] =
      benchmark::Counter(static_cast<double>(kBatch * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_RawPasses(benchmark::State& state) {
  torch::set_num_threads(kThreads);
  const int64_t steps = state.range(0);
  auto m = default_model();
  const auto& [x, y] = batch();
  for (auto _ : state) {
    {
      torch::NoGradGuard ng;
      benchmark::DoNotOptimize(m->forward(x).data_ptr<float>());
    }
    for (int64_t t = 0; t < steps; ++t) {
      auto xi = x.detach().requires_grad_(true);
      auto loss = torch::nn::functional::cross_entropy(
          m->forward(xi), y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      benchmark::DoNotOptimize(torch::autograd::grad({loss}, {xi})[0].data_ptr<float>());
    }
    torch::NoGradGuard ng;
    benchmark::DoNotOptimize(m->forward(x).data_ptr<float>());
  }
  report(state);
}

void BM_Attack(benchmark::State& state, const std::string& name, bool early_stop) {
  torch::set_num_threads(kThreads);
  auto m = default_model();
  const auto& [x, y] = batch();
  auto attack = sdsgsm::make_attack(name, sdsgsm::AttackOptions().set_early_stop(early_stop));
  double iterations = 0;
  for (auto _ : state) {
    auto r = attack->run(*m, x, y);
    iterations += r.iterations.to(torch::kFloat64).mean().item<double>();
  }
  report(state);
  state.counters["mean_iters"] = iterations / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK(BM_RawPasses)->Arg(1)->Arg(10)->ArgName("steps")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, fgsm, "fgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, ifgsm, "ifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, mifgsm, "mifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, nifgsm, "nifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, pgd, "pgd", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, ifgsm_early_stop, "ifgsm", true)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, mifgsm_early_stop, "mifgsm", true)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
