// FMN, Fast Minimum-Norm (Pintor, Roli, Brendel & Biggio, "Fast Minimum-norm Adversarial Attacks
// through Adaptive Norm Constraints", NeurIPS 2021). Distance: l2 or l_inf (--norm). Unbounded:
// --eps does not apply.
// Gradient descent on the logit margin m (z_y - max_{j != y} z_j; targeted max_{j != t} z_j - z_t)
// inside an l_p ball of radius eps that adapts at every step:
//   adversarial:           eps <- min(eps (1 - gamma_k), ||best delta||_p)
//   not, none found yet:   eps <- (||delta||_p + m / ||grad m||_q) (1 + gamma_k)  (the linearised
//                          distance to the boundary, q the dual norm, and a little beyond: exactly
//                          on the boundary, a locally linear model would never be crossed)
//   not, one found before: eps <- eps (1 + gamma_k)
//   delta <- delta - alpha_k eps d,  d = g / ||g||_2 (l2) or sign(g) (l_inf), g = grad m
//   delta <- projection onto the eps ball, then clipped so that x + delta stays in [0,1]
// from delta = 0, with alpha_k cosine-annealed from --learning-rate to 1/100 of it and gamma_k from
// --norm-gamma to 1/50 of it (the paper's 0.05 -> 0.001) over --steps. The smallest adversarial
// iterate is returned. The step is relative to eps (the paper's is absolute, alpha 1 for l2 and
// 10 for l_inf): one default then serves both norms and every image scale.
// Defaults: --steps (10), learning rate 1, gamma 0.05.
// Options used: steps, learning_rate, norm_gamma, norm, targeted.
#include "minnorm.hpp"

namespace sdsgsm {

const char kFmn[] = "fmn";
namespace {

using detail::MinNormProblem;

constexpr double kFmnLearningRate = 1.0;

class Fmn final : public detail::MinNormAttack {
 public:
  using MinNormAttack::MinNormAttack;

 protected:
  double learning_rate() const { return mn().learning_rate.value_or(kFmnLearningRate); }

  nlohmann::json parameters() const override {
    return {{"learning_rate", learning_rate()}, {"norm_gamma", mn().norm_gamma}};
  }

  void minimize(MinNormProblem& p) const override {
    const int64_t steps = options_.steps;
    const double lr = learning_rate(), gamma0 = mn().norm_gamma;
    const bool l2 = p.norm == Norm::L2;
    auto per_sample = [](const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); };
    auto loss = [&](const torch::Tensor& logits, const torch::Tensor&, const torch::Tensor& label) {
      return p.margin(logits, label);
    };
    torch::Tensor eps = torch::zeros({p.size()}, p.x.options());
    torch::Tensor delta = torch::zeros_like(p.x);
    for (int64_t k = 0; k < steps; ++k) {
      const double alpha = detail::cosine_schedule(lr, lr / 100, k, steps);
      const double gamma = detail::cosine_schedule(gamma0, gamma0 / 50, k, steps);
      auto e = p.differentiate(p.x + delta, {}, loss);
      torch::NoGradGuard ng;
      const torch::Tensor found_before = p.found();
      torch::Tensor fooled = p.record(e.image, e.logits, {});
      torch::Tensor g = e.grad.flatten(1);
      torch::Tensor dual = l2 ? g.norm(2, 1) : g.abs().sum(1);
      torch::Tensor to_boundary = p.distance(delta) + e.loss.abs() / dual.clamp_min(1e-12);
      eps = torch::where(fooled, torch::minimum(eps * (1 - gamma), p.best_norm),
                         torch::where(found_before, eps * (1 + gamma), to_boundary * (1 + gamma)));
      torch::Tensor d = l2 ? e.grad / per_sample(g.norm(2, 1).clamp_min(1e-12)) : e.grad.sign();
      delta = delta - alpha * per_sample(eps) * d;
      if (l2) {
        delta = delta * per_sample((eps / delta.flatten(1).norm(2, 1).clamp_min(1e-12)).clamp_max(1));
      } else {
        delta = torch::maximum(torch::minimum(delta, per_sample(eps)), -per_sample(eps));
      }
      delta = (p.x + delta).clamp(0.0, 1.0) - p.x;
    }
    p.check(p.x + delta, {});
  }
};

}  // namespace

std::unique_ptr<Attack> make_fmn(const AttackOptions& options, const MinNormOptions& mn) {
  return std::make_unique<Fmn>(kFmn, options, mn, /*linf=*/true);
}

}  // namespace sdsgsm
