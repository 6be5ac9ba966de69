// Models: the network zoo (trained in C++ by sdsgsm), user TorchScript models, and the
// Classifier interface every attack and evaluation uses.
//
// Every classifier takes images in [0,1] (N x 3 x H x W) and returns N x K logits: input
// normalisation lives inside the model, never in the attack.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// Per-channel (x - mean) / std as the first layer of a network. The constants are buffers, so
/// they travel with the weights.
class NormalizeImpl : public torch::nn::Module {
 public:
  NormalizeImpl(std::vector<float> mean, std::vector<float> std);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor mean, stddev;
};
TORCH_MODULE(Normalize);

/// CIFAR-10 training-set channel statistics on the [0,1] scale.
std::vector<float> cifar10_mean();
std::vector<float> cifar10_std();

/// A trainable network of the zoo: [0,1] images in, logits out.
class Network : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// The same function as forward() in evaluation mode, as the TorchScript source of
  /// `def forward(self, x)`, naming each parameter and buffer by its name with '.' written '_'
  /// (`stage1.0.conv1.weight` is `self.stage1_0_conv1_weight`). Batch norm stays unfolded, as in
  /// a model exported from PyTorch.
  virtual std::string script_forward() const = 0;
};

/// Writes a zoo network, in evaluation mode, as a TorchScript module that PyTorch loads with
/// torch.jit.load and that `--model FILE` takes (the logits equal the network's up to float
/// rounding). Its parameters and buffers carry the network's names with '.' written '_'.
void export_torchscript(Network& net, const std::string& arch, const fs::path& out);

/// Names of the architectures `make_network` knows.
std::vector<std::string> zoo_architectures();

/// A name `--model` resolves to shipped weights (models/NAME.pt): every architecture under its
/// own name, and the variants trained otherwise (resnet20-at: adversarially trained).
struct ZooModel {
  std::string name, arch;
  std::string training;  ///< the command that trains it (error messages, `sdsgsm models`)
};
std::vector<ZooModel> zoo_models();
/// The zoo model of that name; nullptr when it is none.
const ZooModel* find_zoo_model(const std::string& name);

/// Builds an untrained network of the zoo. Architectures:
///  - resnet20 / resnet32 / resnet44 / resnet56: He et al. 2016 CIFAR ResNets (3 stages of
///    n basic blocks, 16/32/64 channels, parameter-free zero-padding shortcuts, option A);
///  - vgg7bn: a compact VGG-style network (2x32, 2x64, 2x128 3x3 conv with batch norm and ReLU,
///    max-pooling after each pair, one linear classifier).
/// Throws Error for an unknown name.
std::shared_ptr<Network> make_network(const std::string& arch, int64_t num_classes = 10);

/// Number of trainable parameters of a module.
int64_t count_parameters(const torch::nn::Module& module);

/// Saves a zoo network's weights with its architecture name and class count (atomically).
void save_network(const std::shared_ptr<Network>& net, const std::string& arch, int64_t num_classes,
                  const fs::path& path);

/// What `load_network` returns.
struct LoadedNetwork {
  std::shared_ptr<Network> net;
  std::string arch;
  int64_t num_classes = 10;
};

/// Loads a file written by `save_network`; throws Error when it is not one.
LoadedNetwork load_network(const fs::path& path);

/// The interface attacks and evaluations use.
class Classifier {
 public:
  virtual ~Classifier() = default;
  /// [0,1] images (N x C x H x W, float) to N x K logits. Differentiable with respect to x.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  torch::Tensor operator()(const torch::Tensor& x) { return forward(x); }
  /// A name for reports: the zoo name or the file path.
  virtual std::string name() const = 0;
  /// "resnet20", ... or "torchscript".
  virtual std::string kind() const = 0;
  virtual int64_t parameter_count() const = 0;
  /// Moves the model to a device (its inputs must then live there too). Classifiers that only run
  /// on the CPU may ignore it.
  virtual void to(const torch::Device& device) { (void)device; }
};

/// Parses --device: "cpu", "cuda" or "cuda:N". Throws Error for anything else, and for CUDA when
/// this build's LibTorch has none (Debian's libtorch-dev is CPU-only), saying how to get it.
torch::Device parse_device(const std::string& text);

/// Resolves `--model NAME|PATH` and loads it in evaluation mode with frozen parameters.
/// A zoo name (resnet20, vgg7bn, ...) resolves to the shipped weights wherever the tool runs
/// from; anything else is a path to a file written by `sdsgsm train` or to a TorchScript module
/// (torch.jit.save), whose output must be N x K logits.
std::shared_ptr<Classifier> load_classifier(const std::string& name_or_path);

/// How a TorchScript model is run.
struct ModelLoadOptions {
  /// As PyTorch runs a module it loaded with torch.jit.load: not frozen, its input in the layout
  /// it comes in (no channels-last copy), each operator run as eager PyTorch runs it; adversarials then
  /// equal a Python loop's on the same file bit for bit. Off (default): the fast path, a frozen
  /// copy on channels-last input (ScriptClassifier in classifier.cpp). Zoo models ignore it.
  SDSGSM_OPTION(bool, exact, false)
};
std::shared_ptr<Classifier> load_classifier(const std::string& name_or_path, const ModelLoadOptions& options);
/// The options the one-argument load_classifier uses (the command line's --exact sets them).
void set_default_model_load_options(const ModelLoadOptions& options);

/// A TorchScript module in memory (e.g. handed over from Python) as a classifier, run as a file
/// loaded by `load_classifier` is. The module itself is put in evaluation mode with frozen
/// parameters: pass a clone to keep the caller's untouched. `name` is for reports and errors.
std::shared_ptr<Classifier> wrap_script_module(torch::jit::Module module, std::string name,
                                               const ModelLoadOptions& options = {});

/// Wraps an in-memory network (e.g. just trained) as a classifier (eval mode, frozen).
std::shared_ptr<Classifier> wrap_network(std::shared_ptr<Network> net, std::string name,
                                         std::string kind);

/// The file a zoo name resolves to, searching in order: $SDSGSM_MODEL_DIR, models/ beside the
/// executable (and one level up: the build tree), share/sdsgsm/models of the prefix the library
/// (libsdsgsm.so) is installed in, the source tree's models/, the configured install prefix's
/// share/sdsgsm/models. Returns an empty path when no file is found.
fs::path find_zoo_weights(const std::string& name);

}  // namespace sdsgsm
