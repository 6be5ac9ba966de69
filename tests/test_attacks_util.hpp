// Small classifiers with known behaviour for the attack tests.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "sdsgsm/data.hpp"
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

/// n 8-bit images (3 x hw x hw, pixels drawn in [lo, hi]) labelled with the model's own predictions,
/// as an image source over `keep` (which holds them), with `classes` class names.
inline std::unique_ptr<sdsgsm::ImageSource> own_labelled_source(sdsgsm::Classifier& model, int64_t n, uint64_t seed,
                                                                sdsgsm::Dataset& keep, int64_t hw = 8,
                                                                int64_t classes = 10, int64_t lo = 0, int64_t hi = 255) {
  auto gen = at::detail::createCPUGenerator(seed);
  keep.images = torch::randint(lo, hi + 1, {n, 3, hw, hw}, gen, torch::kInt64).to(torch::kUInt8);
  torch::NoGradGuard ng;
  keep.labels = model.forward(keep.images.to(torch::kFloat32).div(255)).argmax(1);
  for (int64_t i = 0; i < classes; ++i) keep.classes.push_back("c" + std::to_string(i));
  keep.source = "test";
  return sdsgsm::memory_source(keep);
}

}  // namespace sdsgsm_test
