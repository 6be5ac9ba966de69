// Evaluation checks (include/sdsgsm/checks.hpp).
#include <fmt/format.h>

#include "sdsgsm/checks.hpp"
#include "sdsgsm/distributed.hpp"

namespace sdsgsm {

std::vector<std::string> check_model(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& y,
                                     int64_t num_classes, bool gradients) {
  std::vector<std::string> warnings;
  const std::string name = model.name();
  const torch::Tensor x = x_in.detach().to(torch::kFloat32);
  const int64_t n = x.size(0);
  if (n == 0) return warnings;
  torch::Tensor a, b;
  {
    torch::NoGradGuard ng;
    a = model.forward(x).to(torch::kFloat64).cpu();
    b = model.forward(x).to(torch::kFloat64).cpu();
  }
  const int64_t bad = torch::isfinite(a).all(1).logical_not().sum().item<int64_t>();
  if (bad > 0) {
    throw Error(fmt::format("model '{}' returned NaN or infinite logits for {} of {} images: every figure would be "
                            "meaningless (check its weights, and that it takes images in [0,1])",
                            name, bad, n));
  }
  const int64_t k = a.size(1);
  const int64_t max_label = y.max().item<int64_t>();
  if ((num_classes > 0 && k != num_classes) || max_label >= k) {
    throw Error(fmt::format("model '{}' has {} output classes, but the data has {}{}: they must match{}", name, k,
                            num_classes > 0 ? fmt::format("{} classes", num_classes) : "labels",
                            fmt::format(" (labels up to {})", max_label),
                            num_classes > 0 && num_classes < k && max_label < k
                                ? " (for images of some of the model's classes, name each class folder by its class "
                                  "and give the model's class names with --classes FILE)"
                                : ""));
  }
  const bool in_unit = a.min().item<double>() >= 0 && a.max().item<double>() <= 1;
  if (in_unit && (a.sum(1) - 1).abs().max().item<double>() < 1e-3) {
    warnings.push_back(fmt::format(
        "model '{}' seems to return probabilities (every row is in [0,1] and sums to 1), not logits: "
        "cross-entropy on probabilities has vanishing gradients and overstates robustness; return the logits "
        "(drop the final softmax)",
        name));
  }
  const double diff = (a - b).abs().max().item<double>();
  if (diff > 1e-5 * (1 + a.abs().max().item<double>())) {
    warnings.push_back(fmt::format(
        "model '{}' gave different outputs for the same images in two passes (largest difference {:.3g}): dropout "
        "left on, or a randomised defence? One pass per step then misjudges robustness: make the model "
        "deterministic, or attack the expectation over its randomness (EOT)",
        name, diff));
  }
  if (gradients) {
    torch::Tensor xi = x.clone().requires_grad_(true);
    torch::Tensor logits = model.forward(xi);
    const std::string no_dependence = fmt::format(
        "model '{}': its output does not depend on its input (no gradient flows from the logits back to the "
        "image), so gradient attacks cannot run on it; is the input detached inside the model?",
        name);
    if (!logits.requires_grad()) throw Error(no_dependence);
    // A weighted sum of the outputs (weights 1, 2, ..., K): a plain sum is constant for softmax outputs.
    torch::Tensor weights = torch::arange(1, k + 1, logits.options());
    torch::Tensor g = torch::autograd::grad({(logits * weights).sum()}, {xi}, {}, false, false, true)[0];
    if (!g.defined()) throw Error(no_dependence);
    g = g.cpu();
    const int64_t nan = torch::isfinite(g).flatten(1).all(1).logical_not().sum().item<int64_t>();
    if (nan > 0) {
      throw Error(fmt::format("model '{}' has a NaN or infinite input gradient for {} of {} images: gradient attacks "
                              "would be meaningless on it (a sqrt, log or division at the edge of its domain?)",
                              name, nan, n));
    }
    if (g.abs().max().item<double>() == 0) throw Error(no_dependence);
  }
  const int cores = hardware_threads();
  const int64_t threads = static_cast<int64_t>(torch::get_num_threads()) * dist::local_size();
  if (threads > cores) {
    warnings.push_back(fmt::format("{} threads{} on this machine's {} cores: oversubscribed threads slow every pass, "
                                   "often several times; use --threads {} or fewer",
                                   threads, dist::local_size() > 1 ? " (all ranks together)" : "", cores,
                                   std::max(1, cores / dist::local_size())));
  }
  return warnings;
}

std::string zero_gradient_warning(const std::string& attack, int64_t samples, int64_t total) {
  if (samples <= 0) return {};
  return fmt::format(
      "{}: {} of {} samples had an all-zero input gradient at the first step (saturated softmax, or a "
      "non-differentiable model?): gradient attacks cannot move them, so their robustness may be overestimated; "
      "try a black-box attack on them",
      attack, samples, total);
}

}  // namespace sdsgsm
