// FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein, "Minimally distorted adversarial
// examples with a fast adaptive boundary attack", ICML 2020), as AutoAttack's standard version runs
// it, bounded by --eps in l_inf, l2 or l1 (--norm). For each target t among the clean prediction's
// --targets (9) most likely other classes (fewer when the model has fewer: 1 on a 2-class model), N = --steps
// steps from x_1 = x (later restarts: a random point at half the distance of the best adversarial
// so far, at most eps, from x):
//   f = z_t - z_y and w = grad f at x_k: the decision boundary linearised, {x' : f + w.(x' - x_k) = 0}
//   d_1, d_2  the smallest steps (in the norm) from x_k and from x onto that hyperplane within the
//             box [0,1] (where the box keeps them from reaching it, the box's farthest point toward it)
//   a = min(|d_1| / (|d_1| + |d_2|), alpha_max)
//   x_k+1 = clip_[0,1]((1 - a)(x_k + eta d_1) + a (x + eta d_2))
// and when x_k+1 is misclassified it is kept if it is the closest adversarial so far and the
// iterate moves back toward x: x_k+1 = x + beta (x_k+1 - x). Constants as AutoAttack's: alpha_max 0.1,
// eta 1.05, beta 0.9. A sample counts as fooled when its closest adversarial is within eps; it then
// leaves the attack (its later steps, restarts and targets: FAB would only shrink a perturbation
// already within the budget, so which samples are fooled is the same as running every step).
// Success is misclassification (the targets are a means, as in AutoAttack); a sample not fooled
// within eps returns the clean image. Images the model already misclassifies are not attacked.
// Passes: each step one forward and backward pass (one gradient: f of the one target) and one
// forward pass of the new iterate.
// Per-sample randomness (the restarts' starts) is seeded by (seed, sample id, start), so no
// sample's result depends on its batch.
// In l1 the smallest step onto the hyperplane within the box moves the values with the largest |w_i|
// first, each as far as the box lets it, until w.d reaches the hyperplane.
// Defaults: 100 steps (the registry's), 1 restart (no random start), l_inf.
// Options used: eps, steps, norm, restarts, targets, seed.
#include <cmath>
#include <limits>

#include "attack_common.hpp"

namespace sdsgsm {

const char kFabT[] = "fab-t";

namespace fab_detail {

constexpr double kAlphaMax = 0.1;     ///< the largest weight of the step from x
constexpr double kEta = 1.05;         ///< overshoot of the projections
constexpr double kBeta = 0.9;         ///< the move back toward x after an adversarial
constexpr uint64_t kStartStream = 48;  ///< generator streams of the restarts' starts

torch::Tensor per_image(const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); }

/// Per row of `d` (m x n): its l_inf, l2 or l1 norm.
torch::Tensor row_norm(const torch::Tensor& d, Norm norm) {
  if (norm == Norm::L1) return d.abs().sum(1);
  return norm == Norm::Linf ? d.abs().amax(1) : d.norm(2, 1);
}

/// project_onto_hyperplane's l1 case, with r >= 0 and w, room as there: each value adds up to
/// |w_i| room_i to w.d at an l1 cost of room_i, so the largest |w_i| go first, the last one part way.
torch::Tensor l1_step_onto_hyperplane(const torch::Tensor& w, const torch::Tensor& r, const torch::Tensor& room) {
  const torch::Tensor aw = w.abs();
  auto [aw_sorted, order] = aw.sort(1, /*descending=*/true);
  const torch::Tensor room_sorted = room.gather(1, order);
  const torch::Tensor cum = (aw_sorted * room_sorted).cumsum(1);
  const torch::Tensor before = cum - aw_sorted * room_sorted;
  const torch::Tensor rr = r.unsqueeze(1);
  torch::Tensor amount = torch::where(cum.le(rr), room_sorted,
                                      torch::where(before.lt(rr), (rr - before) / aw_sorted.clamp_min(1e-30), torch::zeros_like(cum)));
  amount = torch::where(aw_sorted.gt(0), amount, torch::zeros_like(amount));
  const torch::Tensor size = torch::zeros_like(amount).scatter(1, order, amount);
  return w.sign() * size;
}

/// The smallest step d (per row, in the norm) from the points t (m x n, in [0,1]) with w.d = r and
/// t + d in [0,1]; where the box keeps the hyperplane out of reach, the box's point farthest along
/// w's side. With the sign chosen so that r >= 0, each coordinate can move |d_i| <= room_i toward
/// w's sign, and the step is d_i = sign(w_i) min(s a_i / |w_i|, room_i) for the smallest s with
/// sum_i min(s a_i, |w_i| room_i) = r: a_i = |w_i| (l_inf: s is the step's size) or w_i^2 (l2: the
/// KKT multiplier). That sum is piecewise linear in s with breakpoints room_i |w_i| / a_i, found in
/// one sort.
torch::Tensor project_onto_hyperplane(const torch::Tensor& t, torch::Tensor w, torch::Tensor r, Norm norm) {
  const torch::Tensor flip = r.lt(0);
  w = torch::where(flip.unsqueeze(1), -w, w);
  r = r.abs();
  const torch::Tensor aw = w.abs();
  const torch::Tensor room = torch::where(w.gt(0), 1 - t, torch::where(w.lt(0), t, torch::zeros_like(t)));
  if (norm == Norm::L1) return l1_step_onto_hyperplane(w, r, room);
  const torch::Tensor slope = norm == Norm::Linf ? aw : aw * aw;
  const torch::Tensor cap = aw * room;
  const torch::Tensor bp = norm == Norm::Linf ? room : torch::where(aw.gt(0), room / aw.clamp_min(1e-30), torch::zeros_like(room));
  auto [bp_sorted, order] = bp.sort(1);
  const torch::Tensor slope_sorted = slope.gather(1, order), cap_sorted = cap.gather(1, order);
  const torch::Tensor cap_cum = cap_sorted.cumsum(1);         // sum_{j<=k} cap
  const torch::Tensor slope_cum = slope_sorted.cumsum(1);     // sum_{j<=k} a
  const torch::Tensor slope_total = slope_cum.select(1, -1).unsqueeze(1);
  const torch::Tensor reach = cap_cum + bp_sorted * (slope_total - slope_cum);  // sum at s = bp_k
  const torch::Tensor k = reach.lt(r.unsqueeze(1)).sum(1);  // the breakpoints the sum stays below r at
  const int64_t n = t.size(1);
  const torch::Tensor before = (k - 1).clamp_min(0).unsqueeze(1);
  const torch::Tensor has_before = k.gt(0);
  const torch::Tensor cap_before = torch::where(has_before, cap_cum.gather(1, before).squeeze(1), torch::zeros_like(r));
  const torch::Tensor slope_before = torch::where(has_before, slope_cum.gather(1, before).squeeze(1), torch::zeros_like(r));
  torch::Tensor s = ((r - cap_before) / (slope_total.squeeze(1) - slope_before).clamp_min(1e-30)).clamp_min(0);
  s = torch::where(k.ge(n), torch::full_like(s, std::numeric_limits<float>::infinity()), s).unsqueeze(1);
  const torch::Tensor size = norm == Norm::Linf ? torch::min(s, room) : torch::min(s * aw, room);
  return torch::where(aw.gt(0), w.sign() * size, torch::zeros_like(size));
}

class FabT final : public Attack {
 public:
  explicit FabT(AttackOptions options) : Attack(kFabT, std::move(options)) {
    options_.validate();
    if (options_.targeted != TargetMode::None) {
      throw Error(fmt::format("--targeted: {} picks its own targets (the --targets most likely other classes)", name_));
    }
    if (options_.shrinking_radius) {
      throw Error(fmt::format("--shrinking-radius: {} has no radius schedule (apgd-ce, apgd-dlr and apgd-t with --norm 1)", name_));
    }
    if (options_.early_stop_8bit) throw Error(fmt::format("--early-stop-8bit: {} has no early stop to refine", name_));
  }

  nlohmann::json config() const override {
    nlohmann::json j = options_.to_json();
    j.erase("early_stop");
    j.erase("random_start");
    j["attack"] = name_;
    j["norm"] = to_string(norm());
    j["restarts"] = options_.restarts;
    j["target_classes"] = options_.targets;
    j.erase("targets");
    j["alpha_max"] = kAlphaMax;
    j["eta"] = kEta;
    j["beta"] = kBeta;
    return j;
  }

 protected:
  Norm norm() const { return options_.norm.value_or(Norm::Linf); }
  double refine_bound() const override { return norm() == Norm::Linf ? options_.eps : -1; }

  void attack(AttackContext& c) const override {
    const int64_t classes = c.clean_logits.size(1);
    c.r.adversarial = c.x.clone();
    torch::Tensor fooled = c.succeeded(c.r.clean_pred).clone();
    const torch::Tensor order = std::get<1>(c.clean_logits.sort(1, /*descending=*/true));
    const int64_t rounds = std::min(options_.targets, classes - 1);
    uint64_t start = 0;
    for (int64_t round = 0; round < rounds; ++round) {
      for (int64_t restart = 0; restart < options_.restarts; ++restart, ++start) {
        torch::Tensor rows = fooled.logical_not().nonzero().squeeze(1);
        if (rows.size(0) == 0) return;
        run_once(c, rows, order.index_select(0, rows).select(1, round + 1), restart > 0 ? start : -1, fooled);
      }
    }
  }

 private:
  /// One FAB run toward `target` for the samples `rows`, from x (start < 0) or a random start.
  void run_once(AttackContext& c, const torch::Tensor& rows, const torch::Tensor& target, int64_t start,
                torch::Tensor& fooled) const {
    const int64_t m = rows.size(0);
    const double eps = options_.eps;
    const Norm nm = norm();
    const torch::Tensor x0 = c.x.index_select(0, rows), y = c.y.index_select(0, rows);
    const torch::Tensor x0f = x0.flatten(1);
    const torch::Tensor all = torch::arange(m, rows.options());
    torch::Tensor best = torch::full({m}, std::numeric_limits<float>::infinity(), x0.options());
    torch::Tensor best_x = x0.clone();
    torch::Tensor x1 = x0.clone();
    if (start >= 0) {
      // The reference's restart: half the distance min(best so far, eps) in a random direction (no
      // adversarial is known at a run's start, so eps).
      torch::Tensor t = torch::empty(x0.sizes(), torch::kFloat32);
      const torch::Tensor ids = c.ids_cpu.index_select(0, rows.cpu());
      const auto* id = ids.data_ptr<int64_t>();
      for (int64_t i = 0; i < m; ++i) {
        at::Generator gen = detail::sample_generator(options_.seed, id[i], kStartStream + static_cast<uint64_t>(start));
        if (nm == Norm::Linf) {
          t[i].uniform_(-1.0, 1.0, gen);
        } else {
          t[i].normal_(0.0, 1.0, gen);
        }
      }
      t = t.to(x0.device());
      x1 = (x0 + 0.5 * eps * t / per_image(row_norm(t.flatten(1), nm).clamp_min(1e-12))).clamp(0.0, 1.0);
    }
    torch::Tensor live = all;  // local rows still not fooled within eps
    for (int64_t k = 0; k < options_.steps && live.size(0) > 0; ++k) {
      const torch::Tensor at_rows = rows.index_select(0, live);
      const torch::Tensor xl = x1.index_select(0, live), base = x0f.index_select(0, live);
      const torch::Tensor yl = y.index_select(0, live), tl = target.index_select(0, live);
      torch::Tensor f, g;
      {
        torch::Tensor point = xl.detach().requires_grad_(true);
        torch::Tensor logits = c.model.forward(point);
        torch::Tensor diff = logits.gather(1, tl.unsqueeze(1)).squeeze(1) - logits.gather(1, yl.unsqueeze(1)).squeeze(1);
        g = torch::autograd::grad({diff.sum()}, {point})[0].detach().flatten(1);
        f = diff.detach();
        c.count_forward(at_rows);
        c.count_backward(at_rows);
      }
      torch::NoGradGuard ng;
      const torch::Tensor xf = xl.flatten(1);
      // The hyperplane f + g.(x' - x_k) = 0: from x_k, g.d = -f; from x, g.d = -f + g.(x_k - x).
      const torch::Tensor d1 = project_onto_hyperplane(xf, g, -f, nm);
      const torch::Tensor d2 = project_onto_hyperplane(base, g, -f + (g * (xf - base)).sum(1), nm);
      const torch::Tensor a1 = row_norm(d1, nm).clamp_min(1e-8), a2 = row_norm(d2, nm).clamp_min(1e-8);
      const torch::Tensor a = (a1 / (a1 + a2)).clamp(0.0, kAlphaMax).unsqueeze(1);
      torch::Tensor next = ((1 - a) * (xf + kEta * d1) + a * (base + kEta * d2)).clamp(0.0, 1.0);
      c.count_forward(at_rows);
      c.r.iterations.index_add_(0, at_rows, torch::ones({live.size(0)}, c.r.iterations.options()));
      const torch::Tensor adv = c.model.forward(next.view_as(xl)).argmax(1).ne(yl);
      const torch::Tensor dist = row_norm(next - base, nm);
      const torch::Tensor closer = adv.logical_and(dist.lt(best.index_select(0, live)));
      best.index_copy_(0, live, torch::where(closer, dist, best.index_select(0, live)));
      best_x.index_copy_(0, live, torch::where(per_image(closer), next.view_as(xl), best_x.index_select(0, live)));
      next = torch::where(adv.unsqueeze(1), base + kBeta * (next - base), next);
      x1.index_copy_(0, live, next.view_as(xl));
      live = live.masked_select(best.index_select(0, live).gt(eps));
    }
    const torch::Tensor within = best.le(eps);
    const torch::Tensor hit = within.nonzero().squeeze(1);
    if (hit.size(0) > 0) c.r.adversarial.index_copy_(0, rows.index_select(0, hit), best_x.index_select(0, hit));
    fooled.index_copy_(0, rows, fooled.index_select(0, rows).logical_or(within));
  }
};

}  // namespace fab_detail

std::unique_ptr<Attack> make_fab_t(const AttackOptions& options) { return std::make_unique<fab_detail::FabT>(options); }

}  // namespace sdsgsm
