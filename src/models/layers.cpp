#include "sdsgsm/models.hpp"

namespace sdsgsm {

NormalizeImpl::NormalizeImpl(std::vector<float> m, std::vector<float> s) {
  auto n = static_cast<int64_t>(m.size());
  mean = register_buffer("mean", torch::tensor(m).view({1, n, 1, 1}));
  stddev = register_buffer("std", torch::tensor(s).view({1, n, 1, 1}));
}

torch::Tensor NormalizeImpl::forward(const torch::Tensor& x) { return (x - mean) / stddev; }

std::vector<float> cifar10_mean() { return {0.4914f, 0.4822f, 0.4465f}; }
std::vector<float> cifar10_std() { return {0.2470f, 0.2435f, 0.2616f}; }

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace sdsgsm
