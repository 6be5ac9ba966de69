// The 8-bit refinement and the rounding-aware finish (see refine.hpp).
#include "refine.hpp"

#include <algorithm>
#include <cmath>

#include "attack_common.hpp"
#include "minnorm.hpp"
#include "sdsgsm/metrics.hpp"

namespace sdsgsm::detail {
namespace {

namespace F = torch::nn::functional;

torch::Tensor per_sample(const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); }
torch::Tensor l2_of(const torch::Tensor& d) { return d.flatten(1).norm(2, 1); }

/// The scale ladder of the finish: 1, then 1 + 2^-6 doubling the excess up to 2; then 3, 4, 6 and 8
/// for the perturbations so small that rounding wipes them out (most pixels move less than half a
/// level: a minimum-norm adversarial a hair past the boundary), which only they pay for.
double ladder(int64_t i) {
  static constexpr double kTail[] = {3.0, 4.0, 6.0, 8.0};
  if (i == 0) return 1.0;
  return i < 8 ? 1.0 + std::ldexp(1.0, static_cast<int>(i) - 7) : kTail[i - 8];
}
constexpr int64_t kLadder = 12;

torch::Tensor clip(const torch::Tensor& delta, double bound) {
  return bound >= 0 ? delta.clamp(-bound, bound) : delta;
}

}  // namespace

torch::Tensor quantize_levels(const torch::Tensor& x, int64_t levels) {
  if (levels == 256) return quantize_8bit(x);
  const double q = static_cast<double>(levels - 1);
  return torch::round(x.clamp(0.0, 1.0) * q) / q;
}

torch::Tensor snap_to_grid(AttackContext& c, const torch::Tensor& rows, int64_t levels, int64_t max_passes,
                           double bound) {
  torch::NoGradGuard ng;
  const auto i64 = rows.options();
  torch::Tensor on_grid = torch::zeros({rows.size(0)}, i64.dtype(torch::kBool));
  if (rows.size(0) == 0) return on_grid;
  const torch::Tensor x = c.x.index_select(0, rows);
  const torch::Tensor delta = c.r.adversarial.index_select(0, rows) - x;
  const torch::Tensor goal = c.goal().index_select(0, rows);
  torch::Tensor left = torch::arange(rows.size(0), i64);  // positions in rows not yet on the grid
  for (int64_t i = 0; i < std::min(max_passes, kLadder) && left.size(0) > 0; ++i) {
    const torch::Tensor xl = x.index_select(0, left);
    const torch::Tensor cand = quantize_levels(xl + clip(ladder(i) * delta.index_select(0, left), bound), levels);
    const torch::Tensor at = rows.index_select(0, left);
    c.count_forward(at);
    const torch::Tensor ok = attack_success_logits(c.model.forward(cand), goal.index_select(0, left), c.targeted,
                                                   kGridMargin);
    const torch::Tensor hit = ok.nonzero().squeeze(1);
    if (hit.size(0) > 0) {
      c.r.adversarial.index_copy_(0, at.index_select(0, hit), cand.index_select(0, hit));
      on_grid.index_fill_(0, left.index_select(0, hit), true);
    }
    left = left.masked_select(ok.logical_not());
  }
  return on_grid;
}

void refine_8bit(AttackContext& c, const AttackOptions& o, double bound) {
  const int64_t budget = o.refine;
  if (budget <= 0) return;
  torch::NoGradGuard ng;
  AttackResult& r = c.r;
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(c.x.device());
  // Samples the attack left unperturbed (the clean image fools, or nothing was found) are left.
  const torch::Tensor moved = (r.adversarial - c.x).flatten(1).abs().amax(1).gt(0);
  const torch::Tensor tried = moved.nonzero().squeeze(1);
  if (tried.size(0) == 0) return;
  // Pass 1: which adversarials fool once rounded.
  const torch::Tensor rounded = quantize_8bit(r.adversarial.index_select(0, tried));
  c.count_forward(tried);
  const torch::Tensor logits = c.model.forward(rounded);
  const torch::Tensor ok8 = attack_success_logits(logits, c.goal().index_select(0, tried), c.targeted, kGridMargin);
  // The rest of the budget: gradient steps, and the check of the last iterate.
  const int64_t steps = budget - 2;
  const double step0 = o.refine_step, gamma = o.refine_gamma;
  {
    torch::Tensor hit = ok8.nonzero().squeeze(1);
    r.adversarial.index_copy_(0, tried.index_select(0, hit), rounded.index_select(0, hit));
  }
  const torch::Tensor rows = tried.masked_select(ok8);  // refined: on the grid and fooling
  const int64_t m = rows.size(0);
  if (m == 0 || steps < 1) return;
  const torch::Tensor x = c.x.index_select(0, rows);
  const torch::Tensor goal = c.goal().index_select(0, rows);
  torch::Tensor best = r.adversarial.index_select(0, rows);
  torch::Tensor best_norm = l2_of(best - x);
  // Keeps the candidates (grid images of the refined samples `sub`) that fool with the margin and
  // are closer than the best so far; returns which fool.
  auto record = [&](const torch::Tensor& cand, const torch::Tensor& cand_logits, const torch::Tensor& sub) {
    const torch::Tensor fooled =
        attack_success_logits(cand_logits, goal.index_select(0, sub), c.targeted, kGridMargin);
    const torch::Tensor d = l2_of(cand - x.index_select(0, sub));
    const torch::Tensor better = fooled.logical_and(d.lt(best_norm.index_select(0, sub))).nonzero().squeeze(1);
    if (better.size(0) > 0) {
      const torch::Tensor at = sub.index_select(0, better);
      best.index_copy_(0, at, cand.index_select(0, better));
      best_norm.index_copy_(0, at, d.index_select(0, better));
    }
    return fooled;
  };

  // Quantised DDN steps from the rounded adversarial; `image` stays on the grid (it is what is
  // checked).
  {
    const torch::Tensor all = torch::arange(m, i64);
    torch::Tensor image = best.clone();
    torch::Tensor eps = best_norm.clone();
    const auto ce = F::CrossEntropyFuncOptions().reduction(torch::kSum);
    const double sign = c.targeted ? -1.0 : 1.0;
    for (int64_t k = 0; k < steps; ++k) {
      torch::Tensor grad, point_logits;
      {
        torch::AutoGradMode on(true);
        torch::Tensor point = image.detach().requires_grad_(true);
        torch::Tensor out = c.model.forward(point);
        torch::Tensor loss = sign * F::cross_entropy(out, goal, ce);
        grad = torch::autograd::grad({loss}, {point})[0];
        point_logits = out.detach();
      }
      c.count_forward(rows);
      c.count_backward(rows);
      const torch::Tensor fooled = record(image, point_logits, all);
      const double step = cosine_schedule(step0, step0 / 100, k, steps);
      const torch::Tensor g = grad / per_sample(l2_of(grad).clamp_min(1e-12));
      torch::Tensor delta = image - x + step * per_sample(eps) * g;
      eps = torch::where(fooled, eps * (1 - gamma), eps * (1 + gamma));
      delta = delta * per_sample(eps / l2_of(delta).clamp_min(1e-12));
      image = quantize_8bit(x + clip(delta, bound));
    }
    c.count_forward(rows);
    record(image, c.model.forward(image), all);
  }
  r.adversarial.index_copy_(0, rows, best);
}

}  // namespace sdsgsm::detail
