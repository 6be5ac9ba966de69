// vgg7bn: a compact VGG-style network with batch norm (Simonyan & Zisserman 2015 in spirit):
// three stages of two 3x3 convolutions (32, 64, 128 channels) with BN and ReLU, 2x2 max-pooling
// after each stage, then one linear classifier on the flattened 128 x 4 x 4 features.
#include <fmt/format.h>

#include "models/zoo_internal.hpp"

namespace sdsgsm {
namespace {

namespace nn = torch::nn;

class Vgg7Bn : public Network {
 public:
  explicit Vgg7Bn(int64_t num_classes)
      : normalize(register_module("normalize", Normalize(cifar10_mean(), cifar10_std()))) {
    // Module indices in `features` (conv, bn, relu per layer; a pool per stage) are what the weight
    // files are keyed by.
    int64_t in = 3;
    for (int64_t width : {32, 64, 128}) {
      for (int rep = 0; rep < 2; ++rep) {
        nn::Conv2d conv(nn::Conv2dOptions(in, width, 3).padding(1).bias(false));
        nn::BatchNorm2d bn(width);
        features->push_back(conv);
        features->push_back(bn);
        features->push_back(nn::Functional(torch::relu));
        units_.emplace_back(conv, bn);
        in = width;
      }
      features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    }
    register_module("features", features);
    classifier = register_module("classifier", nn::Linear(128 * 4 * 4, num_classes));
    for (auto& m : modules(false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      }
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = inference_layout(*this, normalize(x));
    for (size_t i = 0; i < units_.size(); ++i) {
      x = units_[i](x).relu_();
      if (i % 2 == 1) x = torch::max_pool2d(x, 2);
    }
    return classifier(x.flatten(1));
  }

  std::string script_forward() const override {
    std::string src = "def forward(self, x):\n    x = (x - self.normalize_mean) / self.normalize_std\n";
    // features: conv, bn, relu per layer and a pool after every second layer.
    int64_t index = 0;
    for (size_t i = 0; i < 6; ++i) {
      const auto* bn = features->ptr(static_cast<size_t>(index + 1))->as<nn::BatchNorm2d>();
      src += fmt::format("    x = torch.relu({})\n",
                         script_conv_bn("x", fmt::format("features_{}", index), fmt::format("features_{}", index + 1), 1,
                                        bn->options.eps()));
      index += 3;
      if (i % 2 == 1) {
        src += "    x = torch.max_pool2d(x, [2, 2])\n";
        index += 1;
      }
    }
    src += "    return torch.addmm(self.classifier_bias, torch.flatten(x, 1), self.classifier_weight.t())\n";
    return src;
  }

  Normalize normalize;
  nn::Sequential features;
  nn::Linear classifier{nullptr};

 private:
  std::vector<ConvBn> units_;  ///< the six conv + bn layers of `features`, in order
};

}  // namespace

std::shared_ptr<Network> make_vgg7bn(int64_t num_classes) { return std::make_shared<Vgg7Bn>(num_classes); }

}  // namespace sdsgsm
