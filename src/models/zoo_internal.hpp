#pragma once

#include "sdsgsm/models.hpp"

namespace sdsgsm {

std::shared_ptr<Network> make_cifar_resnet(int64_t depth, int64_t num_classes);
std::shared_ptr<Network> make_vgg7bn(int64_t num_classes);

/// A bias-free convolution followed by batch norm, the unit both zoo families are built from.
/// In training mode it is bn(conv(x)). In evaluation mode batch norm is an affine map per
/// channel, so it is folded into the convolution: w' = w * g, b' = beta - mean * g with
/// g = gamma / sqrt(var + eps); one convolution instead of two passes over the activations
/// (the same function up to float rounding). The modules stay registered by their owner, so
/// weight files keep their names.
class ConvBn {
 public:
  ConvBn(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn) : conv_(std::move(conv)), bn_(std::move(bn)) {}
  torch::Tensor operator()(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_;
  torch::nn::BatchNorm2d bn_;
};

/// Checks a model file before LibTorch reads it: LibTorch 1.13's loader does not check the zip
/// entries' CRC-32, and its unpickler can crash (SIGSEGV) on a damaged pickle (found by
/// fuzz_model). A zip archive with a damaged entry is an Error naming the file and the entry; so is
/// a file on which torch::jit::load, tried in a forked child, crashes.
void check_model_archive(const fs::path& path);

/// load_network for a file check_model_archive has already checked.
LoadedNetwork load_checked_network(const fs::path& path);

/// TorchScript source of conv (3x3, no bias, padding 1) then batch norm (evaluation mode) on
/// `input`, for Network::script_forward; `conv` and `bn` are the modules' names with '_'.
std::string script_conv_bn(const std::string& input, const std::string& conv, const std::string& bn,
                           int64_t stride, double bn_eps);

/// Layout for a network's activations in evaluation mode: channels-last, on which oneDNN's
/// convolutions run faster here (forward about 1.2x, forward + input gradient a few per cent).
torch::Tensor inference_layout(const torch::nn::Module& net, const torch::Tensor& x);

}  // namespace sdsgsm
