// DDN, Decoupled Direction and Norm (Rony et al., "Decoupling Direction and Norm for Efficient
// Gradient-Based L2 Adversarial Attacks and Defenses", CVPR 2019). Distance: l2. Unbounded: --eps
// does not apply.
// The direction and the norm of the perturbation delta are updated separately:
//   delta <- delta + alpha_k g / ||g||_2           (g: gradient of the cross-entropy, ascending; targeted:
//                                                  of minus the cross-entropy of the target)
//   eps   <- eps (1 - gamma) if x + delta was adversarial, else eps (1 + gamma)
//   delta <- eps delta / ||delta||_2, then clipped so that x + delta stays in [0,1] and, with
//            --levels L (default 256), x + delta rounded to the L-level grid (as the paper and
//            its reference implementation do: every iterate is an image that can be saved)
// from delta = 0 and eps = --initial-norm (capped at the norm of the farthest image in the box), with
// alpha_k cosine-annealed from --learning-rate to 1/100 of it over --steps. The smallest adversarial
// iterate is returned.
// Defaults: 100 steps (the registry's), learning rate 1 and gamma 0.05 (the paper's), initial norm 1 (the paper's).
// Options used: steps, learning_rate, norm_gamma, initial_norm, targeted.
#include "minnorm.hpp"
#include "refine.hpp"

namespace sdsgsm {

const char kDdn[] = "ddn";
namespace {

namespace F = torch::nn::functional;
using detail::MinNormProblem;

constexpr double kDdnLearningRate = 1.0;

class Ddn final : public detail::MinNormAttack {
 public:
  using MinNormAttack::MinNormAttack;

 protected:
  double learning_rate() const { return mn().learning_rate.value_or(kDdnLearningRate); }

  bool iterates_on_grid() const override { return mn().levels > 0; }

  nlohmann::json parameters() const override {
    return {{"learning_rate", learning_rate()}, {"norm_gamma", mn().norm_gamma}, {"initial_norm", mn().initial_norm}};
  }

  void minimize(MinNormProblem& p) const override {
    const int64_t steps = options_.steps;
    const double gamma = mn().norm_gamma, lr = learning_rate();
    const int64_t levels = mn().levels;
    auto per_sample = [](const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); };
    const auto ce = F::CrossEntropyFuncOptions().reduction(torch::kNone);
    const double sign = p.targeted ? -1.0 : 1.0;
    auto loss = [&](const torch::Tensor& logits, const torch::Tensor&, const torch::Tensor& label) {
      return sign * F::cross_entropy(logits, label, ce);
    };
    // No l2 ball beyond the farthest point of the box needs searching.
    const torch::Tensor farthest = torch::maximum(p.x, 1 - p.x).flatten(1).norm(2, 1);
    torch::Tensor eps = torch::full({p.size()}, mn().initial_norm, p.x.options()).minimum(farthest);
    // `image` is the iterate x + delta itself (on the grid when quantised: what is checked).
    torch::Tensor image = p.x.clone();
    for (int64_t k = 0; k < steps; ++k) {
      const double alpha = detail::cosine_schedule(lr, lr / 100, k, steps);
      auto e = p.differentiate(image, {}, loss);
      torch::NoGradGuard ng;
      torch::Tensor fooled = p.record(e.image, e.logits, {});
      torch::Tensor g = e.grad / per_sample(e.grad.flatten(1).norm(2, 1).clamp_min(1e-12));
      torch::Tensor delta = image - p.x + alpha * g;
      eps = torch::where(fooled, eps * (1 - gamma), eps * (1 + gamma)).minimum(farthest);
      delta = delta * per_sample(eps / delta.flatten(1).norm(2, 1).clamp_min(1e-12));
      image = (p.x + delta).clamp(0.0, 1.0);
      if (levels > 0) image = detail::quantize_levels(image, levels);
    }
    p.check(image, {});
  }
};

}  // namespace

std::unique_ptr<Attack> make_ddn(const AttackOptions& options, const MinNormOptions& mn) {
  return std::make_unique<Ddn>(kDdn, options, mn, /*linf=*/false);
}

}  // namespace sdsgsm
