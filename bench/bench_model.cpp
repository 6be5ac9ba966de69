// Throughput of the default model: forward, and forward + gradient with respect to the input
// (parameters frozen, so no weight gradients), in images per second, by batch size and threads.
//
//   build/sdsgsm_bench --benchmark_filter=Model
// Args: {batch, threads}. The counter "img/s" is the figure to read.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bench_util.hpp"
#include "sdsgsm/models.hpp"

namespace {

using sdsgsm_bench::default_model;

void BM_ModelForward(benchmark::State& state) {
  const int64_t batch = state.range(0);
  torch::set_num_threads(static_cast<int>(state.range(1)));
  auto model = default_model();
  auto x = torch::rand({batch, 3, 32, 32});
  torch::NoGradGuard no_grad;
  model->forward(x);  // warm-up
  for (auto _ : state) {
    auto y = model->forward(x);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                               benchmark::Counter::kIsRate);
}

void BM_ModelInputGradient(benchmark::State& state) {
  const int64_t batch = state.range(0);
  torch::set_num_threads(static_cast<int>(state.range(1)));
  auto model = default_model();
  auto x = torch::rand({batch, 3, 32, 32});
  auto labels = torch::randint(0, 10, {batch}, torch::kInt64);
  auto step = [&] {
    auto xi = x.detach().requires_grad_(true);
    auto loss = torch::nn::functional::cross_entropy(
        model->forward(xi), labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    return torch::autograd::grad({loss}, {xi})[0];
  };
  step();  // warm-up
  for (auto _ : state) {
    auto g = step();
    benchmark::DoNotOptimize(g.data_ptr<float>());
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                               benchmark::Counter::kIsRate);
}

void model_args(benchmark::internal::Benchmark* b) {
  for (int64_t batch : {128, 256}) {
    for (int64_t threads : {1, 2}) b->Args({batch, threads});
  }
  b->ArgNames({"batch", "threads"})->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_ModelForward)->Apply(model_args);
BENCHMARK(BM_ModelInputGradient)->Apply(model_args);

BENCHMARK_MAIN();
