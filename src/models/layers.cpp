#include <fmt/format.h>
#include <torch/version.h>

#include "models/zoo_internal.hpp"

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

torch::Tensor ConvBn::operator()(const torch::Tensor& x) {
  const auto& o = bn_->options;
  if (bn_->is_training() || !o.affine() || !o.track_running_stats()) return bn_(conv_(x));
  // Gradients with respect to the weights need the unfolded graph.
  if (torch::GradMode::is_enabled() && (conv_->weight.requires_grad() || bn_->weight.requires_grad())) {
    return bn_(conv_(x));
  }
  // Folded on every call: a few small tensors against a batch of activations (about 1% of the
  // pass at batch 128), and never stale, however the weights were changed.
  torch::Tensor weight, bias;
  {
    torch::NoGradGuard ng;
    auto g = bn_->weight / torch::sqrt(bn_->running_var + o.eps());
    weight = conv_->weight * g.view({-1, 1, 1, 1});
    bias = bn_->bias - bn_->running_mean * g;
  }
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    weight = weight.contiguous(at::MemoryFormat::ChannelsLast);
  }
  const auto& c = conv_->options;
  // The padding is a variant: c10::variant up to LibTorch 1.13, std::variant from 2.0 on.
#if TORCH_VERSION_MAJOR >= 2
  const auto& padding = std::get<torch::ExpandingArray<2>>(c.padding());
#else
  const auto& padding = c10::get<torch::ExpandingArray<2>>(c.padding());
#endif
  return torch::conv2d(x, weight, bias, c.stride(), padding, c.dilation(), c.groups());
}

std::string script_conv_bn(const std::string& input, const std::string& conv, const std::string& bn,
                           int64_t stride, double bn_eps) {
  return fmt::format(
      "torch.batch_norm(torch.conv2d({0}, self.{1}_weight, None, [{2}, {2}], [1, 1]), self.{3}_weight, "
      "self.{3}_bias, self.{3}_running_mean, self.{3}_running_var, False, 0.0, {4:.17g}, False)",
      input, conv, stride, bn, bn_eps);
}

torch::Tensor inference_layout(const torch::nn::Module& net, const torch::Tensor& x) {
  if (net.is_training() || x.dim() != 4) return x;
  return x.contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace sdsgsm
