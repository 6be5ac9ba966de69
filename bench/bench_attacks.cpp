// Throughput of each attack on the default model at batch 128, next to the raw passes it needs
// (T forward + input-gradient passes and 2 plain forward passes for a T-step attack), so the
// engine's overhead shows; early stop's speed-up on real CIFAR-10 test images; and SD-SGSM's
// domain identification (DDI): occluded images per second against plain batched inference at
// the same batch (DDI's chunk), the target being >= 90%.
//
//   build/sdsgsm_bench_attacks            (uses data/cifar10 when present, else random images)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/data.hpp"
#include "bench_util.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm_config.hpp"

namespace {

using sdsgsm_bench::default_model;

constexpr int64_t kBatch = 128;
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

/// Plain inference on batches of DDI's chunk size (the reference for DDI's throughput).
void BM_PlainForward(benchmark::State& state) {
  torch::set_num_threads(kThreads);
  auto m = default_model();
  const int64_t chunk = sdsgsm::DdiOptions().max_batch;
  auto x = batch().first.narrow(0, 0, std::min(chunk, kBatch)).repeat({(chunk + kBatch - 1) / kBatch, 1, 1, 1});
  x = x.narrow(0, 0, chunk).contiguous();
  torch::NoGradGuard ng;
  for (auto _ : state) benchmark::DoNotOptimize(m->forward(x).data_ptr<float>());
  state.counters["img/s"] =
      benchmark::Counter(static_cast<double>(chunk * state.iterations()), benchmark::Counter::kIsRate);
}

/// DDI sensitivity maps of a batch with k x k windows, stride k, given the clean logits (as the
/// engine passes them): "occluded/s" is the figure to set against BM_PlainForward's img/s;
/// "img/s" counts the images mapped.
void BM_Ddi(benchmark::State& state) {
  torch::set_num_threads(kThreads);
  auto m = default_model();
  const auto& [x, y] = batch();
  const int64_t k = state.range(0);
  auto o = sdsgsm::DdiOptions().set_window(k).set_stride(k);
  const int64_t windows = sdsgsm::ddi_windows(x.size(2), x.size(3), o).size(0);
  torch::Tensor logits;
  {
    torch::NoGradGuard ng;
    logits = m->forward(x);
  }
  for (auto _ : state) benchmark::DoNotOptimize(sdsgsm::sensitivity_map(*m, x, y, o, logits).data_ptr<float>());
  report(state);
  state.counters["occluded/s"] = benchmark::Counter(static_cast<double>(kBatch * windows * state.iterations()),
                                                    benchmark::Counter::kIsRate);
}

void BM_SdsgsmAttack(benchmark::State& state, const std::string& name) {
  torch::set_num_threads(kThreads);
  auto m = default_model();
  const auto& [x, y] = batch();
  auto attack = sdsgsm::make_attack(name, sdsgsm::AttackOptions());
  double iterations = 0, ddi = 0;
  for (auto _ : state) {
    auto r = attack->run(*m, x, y);
    iterations += r.iterations.to(torch::kFloat64).mean().item<double>();
    ddi += r.allocation_seconds;
  }
  report(state);
  state.counters["mean_iters"] = iterations / static_cast<double>(state.iterations());
  state.counters["ddi_ms"] = 1000 * ddi / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK(BM_PlainForward)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ddi)->Arg(4)->Arg(8)->Arg(16)->ArgName("window")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdsgsmAttack, sdsgsm, "sdsgsm")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdsgsmAttack, sd_ifgsm, "sd-ifgsm")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdsgsmAttack, sgsm, "sgsm")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawPasses)->Arg(1)->Arg(10)->ArgName("steps")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, fgsm, "fgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, ifgsm, "ifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, mifgsm, "mifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, nifgsm, "nifgsm", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, pgd, "pgd", false)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, ifgsm_early_stop, "ifgsm", true)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attack, mifgsm_early_stop, "mifgsm", true)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
