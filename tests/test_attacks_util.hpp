// Small classifiers with known behaviour for the attack tests.
#pragma once

#include <torch/torch.h>

#include "sdsgsm/models.hpp"

namespace sdsgsm_test {

/// logits = W flatten(x) + b, computed in float64 (so batch and single-sample runs agree to the
/// last bit in practice).
class LinearClassifier : public sdsgsm::Classifier {
 public:
  LinearClassifier(int64_t k, int64_t c, int64_t h, int64_t w, uint64_t seed = 0) {
    auto gen = at::detail::createCPUGenerator(seed);
    weight = torch::randn({k, c * h * w}, gen, torch::kFloat64);
    bias = torch::randn({k}, gen, torch::kFloat64) * 0.1;
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::addmm(bias, x.to(torch::kFloat64).flatten(1), weight.t()).to(torch::kFloat32);
  }
  std::string name() const override { return "linear"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return weight.numel() + bias.numel(); }
  torch::Tensor weight, bias;
};

/// A small fixed random CNN (conv-relu-pool-linear) in float64.
class TinyCnn : public sdsgsm::Classifier {
 public:
  explicit TinyCnn(uint64_t seed = 1) {
    auto gen = at::detail::createCPUGenerator(seed);
    conv = torch::randn({8, 3, 3, 3}, gen, torch::kFloat64) * 0.5;
    fc = torch::randn({10, 8 * 4 * 4}, gen, torch::kFloat64) * 0.3;
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    auto h = torch::relu(torch::conv2d(x.to(torch::kFloat64), conv, {}, 1, 1));
    h = torch::adaptive_avg_pool2d(h, {4, 4}).flatten(1);
    return torch::mm(h, fc.t()).to(torch::kFloat32);
  }
  std::string name() const override { return "tinycnn"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return conv.numel() + fc.numel(); }
  torch::Tensor conv, fc;
};

}  // namespace sdsgsm_test
