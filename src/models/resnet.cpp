// CIFAR ResNets (He et al., "Deep Residual Learning for Image Recognition", 2016, section 4.2):
// a 3x3 conv to 16 channels, three stages of n basic blocks (16, 32, 64 channels; the first
// block of stages 2 and 3 halves the resolution), global average pooling, one linear layer.
// Shortcuts are parameter-free (option A): identity, or subsampling plus zero channels.
#include <fmt/format.h>

#include "models/zoo_internal.hpp"

namespace sdsgsm {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1(register_module("conv1", conv3x3(in, out, stride))),
        bn1(register_module("bn1", nn::BatchNorm2d(out))),
        conv2(register_module("conv2", conv3x3(out, out, 1))),
        bn2(register_module("bn2", nn::BatchNorm2d(out))),
        stride_(stride),
        pad_(out - in),
        unit1_(conv1, bn1),
        unit2_(conv2, bn2) {}

  torch::Tensor forward(const torch::Tensor& x) {
    // In-place ReLU and sum: neither the convolutions' nor batch norm's backward needs its output.
    auto y = unit1_(x).relu_();
    y = unit2_(y);
    torch::Tensor shortcut = x;
    if (stride_ != 1 || pad_ != 0) {
      using torch::indexing::Slice;
      shortcut = x.index({Slice(), Slice(), Slice(torch::indexing::None, torch::indexing::None, stride_),
                          Slice(torch::indexing::None, torch::indexing::None, stride_)});
      shortcut = torch::constant_pad_nd(shortcut, {0, 0, 0, 0, pad_ / 2, pad_ - pad_ / 2});
    }
    return y.add_(shortcut).relu_();
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  int64_t stride_;
  int64_t pad_;

 private:
  ConvBn unit1_, unit2_;
};
TORCH_MODULE(BasicBlock);

class CifarResNet : public Network {
 public:
  CifarResNet(int64_t blocks_per_stage, int64_t num_classes)
      : normalize(register_module("normalize", Normalize(cifar10_mean(), cifar10_std()))),
        conv(register_module("conv", conv3x3(3, 16, 1))),
        bn(register_module("bn", nn::BatchNorm2d(16))),
        fc(register_module("fc", nn::Linear(64, num_classes))),
        stem_(conv, bn) {
    int64_t in = 16;
    int s = 0;
    for (int64_t width : {16, 32, 64}) {
      nn::Sequential stage;
      for (int64_t b = 0; b < blocks_per_stage; ++b) {
        int64_t stride = (b == 0 && width != 16) ? 2 : 1;
        stage->push_back(BasicBlock(in, width, stride));
        in = width;
      }
      stages.push_back(register_module("stage" + std::to_string(++s), stage));
    }
    for (auto& m : modules(false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* l = m->as<nn::Linear>()) {
        nn::init::kaiming_normal_(l->weight);
        nn::init::zeros_(l->bias);
      }
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = stem_(inference_layout(*this, normalize(x))).relu_();
    for (auto& stage : stages) x = stage->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc(x);
  }

  std::string script_forward() const override {
    std::string src = "def forward(self, x):\n    x = (x - self.normalize_mean) / self.normalize_std\n";
    src += fmt::format("    x = torch.relu({})\n", script_conv_bn("x", "conv", "bn", 1, bn->options.eps()));
    for (size_t s = 0; s < stages.size(); ++s) {
      for (size_t b = 0; b < stages[s]->size(); ++b) {
        const auto& block = stages[s]->at<BasicBlockImpl>(b);
        const std::string p = fmt::format("stage{}_{}_", s + 1, b);
        src += fmt::format("    y = torch.relu({})\n",
                           script_conv_bn("x", p + "conv1", p + "bn1", block.stride_, block.bn1->options.eps()));
        src += fmt::format("    y = {}\n", script_conv_bn("y", p + "conv2", p + "bn2", 1, block.bn2->options.eps()));
        if (block.stride_ != 1 || block.pad_ != 0) {
          src += fmt::format("    s = torch.constant_pad_nd(x[:, :, ::{0}, ::{0}], [0, 0, 0, 0, {1}, {2}])\n",
                             block.stride_, block.pad_ / 2, block.pad_ - block.pad_ / 2);
          src += "    x = torch.relu(y + s)\n";
        } else {
          src += "    x = torch.relu(y + x)\n";
        }
      }
    }
    src += "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n";
    src += "    return torch.addmm(self.fc_bias, x, self.fc_weight.t())\n";
    return src;
  }

  Normalize normalize;
  nn::Conv2d conv;
  nn::BatchNorm2d bn;
  std::vector<nn::Sequential> stages;
  nn::Linear fc;

 private:
  ConvBn stem_;
};

}  // namespace

std::shared_ptr<Network> make_cifar_resnet(int64_t depth, int64_t num_classes) {
  return std::make_shared<CifarResNet>((depth - 2) / 6, num_classes);
}

}  // namespace sdsgsm
