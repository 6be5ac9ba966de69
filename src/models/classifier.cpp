#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <torch/script.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include "models/zoo_internal.hpp"
#include "sdsgsm_config.hpp"

namespace sdsgsm {
namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string s;
  for (auto d : t.sizes()) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

/// Checks that a model returned N x K logits for an N-image batch.
void check_logits(const torch::Tensor& out, int64_t n, const std::string& name) {
  if (out.dim() != 2 || out.size(0) != n || out.size(1) < 2) {
    throw Error(fmt::format("model '{}' returned a tensor of shape {} for {} images; expected {} x K logits",
                            name, shape_of(out), n, n));
  }
}

class NetworkClassifier : public Classifier {
 public:
  NetworkClassifier(std::shared_ptr<Network> net, std::string name, std::string kind)
      : net_(std::move(net)), name_(std::move(name)), kind_(std::move(kind)) {
    net_->eval();
    for (auto& p : net_->parameters()) p.set_requires_grad(false);
  }
  torch::Tensor forward(const torch::Tensor& x) override { return net_->forward(x); }
  std::string name() const override { return name_; }
  std::string kind() const override { return kind_; }
  int64_t parameter_count() const override { return count_parameters(*net_); }
  void to(const torch::Device& device) override { net_->to(device); }

 private:
  std::shared_ptr<Network> net_;
  std::string name_, kind_;
};

/// A TorchScript module as a classifier. For speed it runs a frozen copy of the module (weights
/// inlined as constants, batch norm folded into the convolutions: torch::jit::freeze), made on the
/// first pass on the module's device, with channels-last input (oneDNN's faster layout here), and
/// without the graph executor's optimisations, whose profiling re-specialises the graph for every
/// new batch shape (early stop changes it at every step) and whose differentiable subgraphs cost
/// more than eager autograd. A module that cannot be frozen runs as it is. Exact mode
/// (ModelLoadOptions::exact) runs the module itself as eager PyTorch does: no freezing, no layout
/// change, the executor's optimisations off too (its numbers are eager's).
class ScriptClassifier : public Classifier {
 public:
  ScriptClassifier(torch::jit::Module module, std::string name, bool exact)
      : module_(std::move(module)), name_(std::move(name)), exact_(exact) {
    module_.eval();
    for (auto p : module_.parameters()) {
      p.set_requires_grad(false);
      parameters_ += p.numel();
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    c10::IValue out;
    try {
      if (exact_) {
        // The executor's optimisations off: each operator runs as in eager PyTorch, with eager
        // autograd (the same kernels, so the same numbers, and faster than differentiable subgraphs).
        torch::jit::GraphOptimizerEnabledGuard no_profiling(false);
        out = module_.forward({x});
      } else {
        torch::jit::Module& module = runnable();  // frozen with the optimiser on: freezing inlines calls
        torch::jit::GraphOptimizerEnabledGuard no_profiling(false);
        out = module.forward({x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x});
      }
    } catch (const c10::Error& e) {
      throw Error(fmt::format("TorchScript model '{}' failed on a {} batch: {}", name_, shape_of(x),
                              first_line(e.what_without_backtrace())));
    } catch (const std::exception& e) {
      // The TorchScript interpreter rethrows an operator's error as std::runtime_error holding
      // its traceback; the last line is the error itself.
      throw Error(fmt::format("TorchScript model '{}' failed on a {} batch: {}", name_, shape_of(x),
                              last_line(e.what())));
    }
    if (!out.isTensor()) {
      throw Error(fmt::format("TorchScript model '{}' returned {} instead of a logits tensor", name_,
                              out.tagKind()));
    }
    auto logits = out.toTensor();
    check_logits(logits, x.size(0), name_);
    return logits.to(torch::kFloat32);
  }
  std::string name() const override { return name_; }
  std::string kind() const override { return exact_ ? "torchscript-exact" : "torchscript"; }
  void to(const torch::Device& device) override {
    module_.to(device);
    frozen_.reset();  // its constants live on the old device
  }
  int64_t parameter_count() const override { return parameters_; }

 private:
  torch::jit::Module& runnable() {
    std::lock_guard<std::mutex> lock(frozen_mutex_);  // threads sharing the classifier freeze it once
    if (!frozen_) {
      try {
        frozen_ = torch::jit::freeze(module_);
      } catch (const std::exception&) {
        frozen_ = module_;  // e.g. a module with attributes it mutates: run it unfrozen
      }
    }
    return *frozen_;
  }
  static std::string last_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    auto nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
  }
  static std::string first_line(const std::string& s) {
    auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
  }
  torch::jit::Module module_;
  std::optional<torch::jit::Module> frozen_;
  std::mutex frozen_mutex_;
  std::string name_;
  bool exact_ = false;
  int64_t parameters_ = 0;
};

ModelLoadOptions& default_load_options() {
  static ModelLoadOptions options;
  return options;
}

bool is_zoo_name(const std::string& s) { return find_zoo_model(s) != nullptr; }

}  // namespace

torch::Device parse_device(const std::string& text) {
  if (text == "cpu") return torch::kCPU;
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw Error(fmt::format("--device {}: this sdsgsm is built against a LibTorch without CUDA (Debian's "
                              "libtorch-dev is CPU-only) or sees no GPU; build it against a CUDA LibTorch with "
                              "SDSGSM_CMAKE_ARGS=-DSDSGSM_TORCH_DIR=/path/to/libtorch (README: 'On a GPU')",
                              text));
    }
    torch::Device d(torch::kCUDA);
    if (text.size() > 5) {
      try {
        d = torch::Device(text);
      } catch (const c10::Error&) {
        throw Error(fmt::format("--device '{}' is not a device (cpu, cuda or cuda:N)", text));
      }
      if (d.index() >= static_cast<int>(torch::cuda::device_count())) {
        throw Error(fmt::format("--device {}: this machine has {} CUDA device(s)", text, torch::cuda::device_count()));
      }
    }
    return d;
  }
  throw Error(fmt::format("--device '{}' is not a device (cpu, cuda or cuda:N)", text));
}

std::shared_ptr<Classifier> wrap_script_module(torch::jit::Module module, std::string name,
                                               const ModelLoadOptions& options) {
  return std::make_shared<ScriptClassifier>(std::move(module), std::move(name), options.exact);
}

void set_default_model_load_options(const ModelLoadOptions& options) { default_load_options() = options; }

std::shared_ptr<Classifier> load_classifier(const std::string& name_or_path) {
  return load_classifier(name_or_path, default_load_options());
}

std::shared_ptr<Classifier> wrap_network(std::shared_ptr<Network> net, std::string name, std::string kind) {
  return std::make_shared<NetworkClassifier>(std::move(net), std::move(name), std::move(kind));
}

std::shared_ptr<Classifier> load_classifier(const std::string& name_or_path, const ModelLoadOptions& options) {
  fs::path path = name_or_path;
  std::string display = name_or_path;
  if (is_zoo_name(name_or_path) && !fs::exists(path)) {
    path = find_zoo_weights(name_or_path);
    if (path.empty()) {
      throw Error(fmt::format("no shipped weights for '{}' (looked in $SDSGSM_MODEL_DIR, models/ beside the "
                              "executable, {}); train them with '{}'",
                              name_or_path, SDSGSM_SOURCE_MODEL_DIR, find_zoo_model(name_or_path)->training));
    }
  } else if (!fs::exists(path)) {
    std::string known;
    for (const auto& m : zoo_models()) known += (known.empty() ? "" : ", ") + m.name;
    throw Error(fmt::format("--model '{}' is neither a zoo name ({}) nor an existing file", name_or_path, known));
  }
  if (!fs::is_regular_file(path)) throw Error(fmt::format("model '{}' is not a file", path.string()));
  check_model_archive(path);
  // A TorchScript module has a forward method; sdsgsm weight files do not.
  torch::jit::Module module;
  bool is_jit = false;
  try {
    module = torch::jit::load(path.string());
    is_jit = module.find_method("forward").has_value();
  } catch (const std::exception&) {
    // c10::Error, and std::runtime_error from TorchScript's parser on a damaged archive (found by
    // fuzz_model).
    throw Error(fmt::format("'{}' is not a model file (neither sdsgsm weights nor TorchScript)", path.string()));
  }
  if (is_jit) return std::make_shared<ScriptClassifier>(std::move(module), display, options.exact);
  LoadedNetwork loaded = load_checked_network(path);  // the archive was checked above
  return wrap_network(loaded.net, display, loaded.arch);
}

}  // namespace sdsgsm
