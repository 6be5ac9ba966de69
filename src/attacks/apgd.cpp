// APGD, Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks", ICML 2020): PGD whose step size needs no tuning. Bounded by
// --eps in l_inf, l2 or l1 (--norm), N = --steps iterations. In l_inf and l2, from a random start
// (a uniform direction scaled to the ball's surface), with
//   z      = P(x_k + eta_k s(grad f(x_k)))                 s: sign (l_inf) or grad / ||grad||_2 (l2)
//   x_k+1  = P(x_k + a (z - x_k) + (1 - a)(x_k - x_k-1))   a = 0.75 (momentum), a = 1 at the first step
// P: projection onto the ball around x, then onto [0,1]. eta starts at 2 eps. At checkpoints
// w_0 = 0, w_1 = 0.22 N, w_j+1 = w_j + max(w_j - w_j-1 - 0.03 N, 0.06 N), each sample halves its
// eta and goes back to the best point it has seen when
//   (1) the loss rose in fewer than rho = 0.75 of the steps since the last checkpoint, or
//   (2) its eta was not halved at the last checkpoint and its best loss has not improved since.
// In l1 (Croce & Hein, "Mind the box: l1-APGD for sparse adversarial attacks on image classifiers",
// ICML 2021), from P(x + t), t ~ N(0, 1) per value, with no momentum:
//   x_k+1 = P(x_k + eta s / ||s||_1)   s = sign(grad) on the k_t largest |grad|, 0 elsewhere
// P: the Euclidean projection onto the l1 ball around x intersected with [0,1] (per value a soft
// threshold capped by the box, the threshold by bisection). eta starts at eps, k_t at 20% of the
// values; every max(0.04 N, 1) steps k_t becomes the best point's nonzero count / 1.5 and each
// sample, if that count fell below 0.95 of the last checkpoint's, goes back to the best point with
// eta = eps, and otherwise divides eta by 1.5 (never below eps / 10).
// Losses (per sample, maximised):
//   apgd-ce    cross-entropy
//   apgd-dlr   DLR = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)            (pi: logits sorted, descending)
//   apgd-t     targeted DLR = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), once for each target t among
//              the clean prediction's 9 most likely other classes (fewer when the model has fewer)
// Success is misclassification for all three (apgd-t's targets are a means, as in AutoAttack):
// every iterate is checked, and a sample leaves the attack (its later restarts and targets) at its
// first success; the last misclassified iterate is its adversarial. --restarts R runs R random
// starts (per target) for the samples still not fooled. Images the model already misclassifies are
// not attacked (the clean image is their adversarial).
// Per-sample randomness is seeded by (seed, sample id, start), and eta, the checkpoints' tests and
// the best points are per sample, so no sample's result depends on its batch.
// EOT (make_apgd_eot, sdsgsm/eot.hpp; `robust --eot-samples N`; AutoAttack's rand version: 20):
// each step's gradient is the mean over N forward and backward passes (a randomised model draws
// anew in each), and the step's loss and success are the last pass's, as in AutoAttack; each step
// counts N passes.
// Defaults: 100 steps (the registry's), 1 restart, 9 targets, l_inf (AutoAttack's standard version),
// 1 pass. AutoAttack's l1 standard version (`robust --norm 1`) runs 5 restarts of APGD-CE and 5
// targets of APGD-T, each restart through the radii 3 eps, 2 eps, eps (--shrinking-radius; its
// use_largereps): ceil(0.3 steps), ceil(0.3 steps) and the rest of the steps (31, 31, 38 of 100, as
// its floating-point 0.3 * 100 rounds up), each leg from the last one's highest-loss point projected
// onto the smaller ball, with the sparsity schedule restarted from that point's nonzero count; only
// the last leg's iterates, inside eps, can succeed.
// Options used: eps, steps, norm, restarts, targets, shrinking_radius, seed.
#include <array>
#include <cmath>
#include <limits>

#include "attack_common.hpp"
#include "sdsgsm/eot.hpp"

namespace sdsgsm {

const char kApgdCe[] = "apgd-ce";
const char kApgdDlr[] = "apgd-dlr";
const char kApgdT[] = "apgd-t";

namespace {

namespace F = torch::nn::functional;

enum class Loss { CrossEntropy, Dlr, TargetedDlr };

constexpr double kMomentum = 0.75;   ///< a
constexpr double kRho = 0.75;        ///< the checkpoints' share of steps the loss must rise in
constexpr uint64_t kStartStream = 16;  ///< generator streams of the random starts (0, 1: engine)

torch::Tensor per_image(const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); }

torch::Tensor dlr_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& target) {
  torch::Tensor sorted = std::get<0>(logits.sort(1, /*descending=*/true));
  const int64_t k = logits.size(1);
  torch::Tensor z_y = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  auto col = [&](int64_t i) { return sorted.select(1, std::min(i, k - 1)); };
  if (!target.defined()) {
    torch::Tensor top_is_y = logits.argmax(1).eq(y);
    torch::Tensor other = torch::where(top_is_y, col(1), col(0));
    return -(z_y - other) / (col(0) - col(2) + 1e-12);
  }
  torch::Tensor z_t = logits.gather(1, target.unsqueeze(1)).squeeze(1);
  return -(z_y - z_t) / (col(0) - 0.5 * (col(2) + col(3)) + 1e-12);
}

class Apgd final : public Attack {
 public:
  Apgd(std::string name, AttackOptions options, Loss loss, int64_t eot_samples = 1)
      : Attack(std::move(name), std::move(options)), loss_(loss), eot_samples_(eot_samples) {
    if (eot_samples_ < 1) throw Error(fmt::format("--eot-samples must be >= 1 (got {})", eot_samples_));
    options_.random_start = true;
    options_.validate();
    if (options_.targeted != TargetMode::None) {
      throw Error(fmt::format("--targeted: {} is untargeted (apgd-t picks its own targets, as AutoAttack does)", name_));
    }
    if (options_.early_stop_8bit) throw Error(fmt::format("--early-stop-8bit: {} has no early stop to refine", name_));
    if (loss_ != Loss::TargetedDlr && options_.targets != AttackOptions().targets) {
      throw Error(fmt::format("--targets: {} is untargeted (apgd-t and fab-t take target classes)", name_));
    }
    if (options_.shrinking_radius && norm() != Norm::L1) {
      throw Error(fmt::format("--shrinking-radius: {} runs it with --norm 1 only (AutoAttack's l1 schedule)", name_));
    }
  }

  nlohmann::json config() const override {
    nlohmann::json j = options_.to_json();
    j.erase("early_stop");
    j["attack"] = name_;
    j["norm"] = to_string(norm());
    j["restarts"] = options_.restarts;
    j["loss"] = loss_ == Loss::CrossEntropy ? "ce" : loss_ == Loss::Dlr ? "dlr" : "dlr-targeted";
    if (loss_ == Loss::TargetedDlr) j["target_classes"] = options_.targets;
    j.erase("targets");
    j["momentum"] = kMomentum;
    j["checkpoint_rho"] = kRho;
    if (eot_samples_ != 1) j["eot_samples"] = eot_samples_;
    return j;
  }

 protected:
  Norm norm() const { return options_.norm.value_or(Norm::Linf); }
  double refine_bound() const override { return norm() == Norm::Linf ? options_.eps : -1; }

  torch::Tensor project(const torch::Tensor& z, const torch::Tensor& x0) const {
    const double eps = options_.eps;
    if (norm() == Norm::Linf) return torch::min(torch::max(z, x0 - eps), x0 + eps).clamp(0.0, 1.0);
    torch::Tensor d = z - x0;
    torch::Tensor scale = (eps / d.flatten(1).norm(2, 1).clamp_min(1e-12)).clamp_max(1.0);
    return (x0 + d * per_image(scale)).clamp(0.0, 1.0);
  }

  /// l1's step direction: sign(g) on the values whose |g| reaches the share `top` of the largest,
  /// divided by their count.
  torch::Tensor sparse_direction(const torch::Tensor& g, const torch::Tensor& top) const {
    const torch::Tensor a = g.flatten(1).abs();
    const int64_t n = a.size(1);
    const torch::Tensor index = ((1 - top) * static_cast<double>(n)).clamp(0, static_cast<double>(n - 1)).to(torch::kLong);
    const torch::Tensor threshold = std::get<0>(a.sort(1)).gather(1, index.unsqueeze(1));
    const torch::Tensor s = g.flatten(1).sign() * a.ge(threshold).to(g.scalar_type());
    return (s / (s.abs().sum(1, /*keepdim=*/true) + 1e-10)).view_as(g);
  }

  torch::Tensor direction(const torch::Tensor& g) const {
    if (norm() == Norm::Linf) return g.sign();
    return g / per_image(g.flatten(1).norm(2, 1).clamp_min(1e-12));
  }

  void attack(AttackContext& c) const override {
    const int64_t classes = c.clean_logits.size(1);
    if (loss_ != Loss::CrossEntropy && classes < 3) {
      throw Error(fmt::format("{}: the DLR loss needs a model with at least 3 classes (this one has {})", name_, classes));
    }
    c.r.adversarial = c.x.clone();
    // Images already misclassified count as fooled by the clean image and are not attacked.
    torch::Tensor fooled = c.succeeded(c.r.clean_pred).clone();
    torch::Tensor order;  // apgd-t: the clean logits' classes, most likely first
    int64_t rounds = 1;
    if (loss_ == Loss::TargetedDlr) {
      order = std::get<1>(c.clean_logits.sort(1, /*descending=*/true));
      rounds = std::min(options_.targets, classes - 1);
    }
    uint64_t start = 0;
    for (int64_t round = 0; round < rounds; ++round) {
      for (int64_t restart = 0; restart < options_.restarts; ++restart, ++start) {
        torch::Tensor rows = fooled.logical_not().nonzero().squeeze(1);
        if (rows.size(0) == 0) return;
        torch::Tensor target;
        if (order.defined()) target = order.index_select(0, rows).select(1, round + 1);
        run_once(c, rows, target, start, fooled);
      }
    }
  }

 private:
  /// One stretch of APGD iterations at one radius.
  struct Leg {
    double eps;
    int64_t steps;
    bool counts;      ///< its misclassified iterates are adversarials (the last leg: inside --eps)
    bool from_start;  ///< l1: the sparsity schedule starts at 20% (else at the start point's share)
  };

  /// One APGD run from a random start for the samples `rows` (apgd-t: toward `target`): one leg
  /// at eps, or with --shrinking-radius three (3 eps, 2 eps, eps).
  void run_once(AttackContext& c, const torch::Tensor& rows, const torch::Tensor& target, uint64_t start,
                torch::Tensor& fooled) const {
    const int64_t m = rows.size(0), steps = options_.steps;
    const double eps = options_.eps;
    const torch::Tensor x0 = c.x.index_select(0, rows), y = c.y.index_select(0, rows);
    const torch::Tensor ids = c.ids_cpu.index_select(0, rows.cpu());

    // The random start: a direction drawn per sample, scaled onto the ball's surface.
    torch::Tensor t = torch::empty(x0.sizes(), torch::kFloat32);
    const auto* id = ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < m; ++i) {
      at::Generator gen = detail::sample_generator(options_.seed, id[i], kStartStream + start);
      if (norm() == Norm::Linf) {
        t[i].uniform_(-1.0, 1.0, gen);
      } else {
        t[i].normal_(0.0, 1.0, gen);
      }
    }
    t = t.to(x0.device());
    torch::Tensor local_fooled = torch::zeros({m}, torch::TensorOptions().dtype(torch::kBool).device(x0.device()));
    torch::Tensor x_best;
    if (norm() == Norm::L1 && options_.shrinking_radius) {
      // AutoAttack's schedule: math.ceil(.3 * n_iter) twice, the rest last.
      const auto part = static_cast<int64_t>(std::ceil(0.3 * static_cast<double>(steps)));
      const int64_t first = std::min(part, steps), second = std::min(part, steps - first);
      const std::array<Leg, 3> legs{Leg{3 * eps, first, false, false}, Leg{2 * eps, second, false, false},
                                    Leg{eps, steps - first - second, true, false}};
      x_best = detail::project_l1_box(x0 + t, x0, legs[0].eps);
      for (const Leg& leg : legs) {
        x_best = descend(c, rows, target, x0, y, detail::project_l1_box(x_best, x0, leg.eps), leg, local_fooled);
      }
    } else {
      torch::Tensor xk;
      if (norm() == Norm::L1) {
        xk = detail::project_l1_box(x0 + t, x0, eps);
      } else {
        torch::Tensor size = norm() == Norm::Linf ? t.abs().flatten(1).amax(1) : t.flatten(1).norm(2, 1);
        xk = (x0 + eps * t / per_image(size.clamp_min(1e-12))).clamp(0.0, 1.0);
      }
      x_best = descend(c, rows, target, x0, y, xk, Leg{eps, steps, true, true}, local_fooled);
    }
    // Samples it did not fool end at their highest-loss point.
    torch::Tensor missed = local_fooled.logical_not().nonzero().squeeze(1);
    if (missed.size(0) > 0) {
      c.r.adversarial.index_copy_(0, rows.index_select(0, missed), x_best.index_select(0, missed));
    }
    fooled.index_copy_(0, rows, fooled.index_select(0, rows).logical_or(local_fooled));
  }

  /// APGD's iterations from `xk` at the leg's radius; returns the highest-loss point. A leg that
  /// counts records each misclassified iterate as its sample's adversarial and in `local_fooled`.
  torch::Tensor descend(AttackContext& c, const torch::Tensor& rows, const torch::Tensor& target,
                        const torch::Tensor& x0, const torch::Tensor& y, torch::Tensor xk, const Leg& leg,
                        torch::Tensor& local_fooled) const {
    const int64_t m = rows.size(0), steps = leg.steps;
    const double eps = leg.eps;
    const bool l1 = norm() == Norm::L1;

    // Loss, logits and gradient at a point; records the samples it fools.
    auto loss_of = [&](const torch::Tensor& logits) {
      if (loss_ == Loss::CrossEntropy) {
        return F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
      }
      return dlr_loss(logits, y, target);
    };
    const int64_t samples = eot_samples_;
    auto evaluate = [&](const torch::Tensor& at, torch::Tensor& loss, torch::Tensor& grad) {
      EotPass pass = eot_gradient(c.model, at, loss_of, samples);
      grad = pass.grad;
      loss = pass.loss;
      c.count_forward(rows, samples);
      c.count_backward(rows, samples);
      if (!leg.counts) return;
      torch::Tensor now = c.succeeded(pass.logits.argmax(1), rows);
      // The last misclassified iterate is the adversarial (AutoAttack keeps it so).
      torch::Tensor hit = now.nonzero().squeeze(1);
      if (hit.size(0) > 0) c.r.adversarial.index_copy_(0, rows.index_select(0, hit), at.index_select(0, hit).detach());
      local_fooled.logical_or_(now);
    };

    torch::Tensor loss, grad;
    evaluate(xk, loss, grad);
    torch::Tensor x_best = xk.clone(), grad_best = grad.clone(), loss_best = loss.clone();
    torch::Tensor x_prev = xk.clone(), loss_prev = loss.clone();
    torch::Tensor eta = torch::full({m}, l1 ? eps : 2 * eps, x0.options());
    const double values = static_cast<double>(x0[0].numel());
    torch::Tensor top = torch::full({m}, 0.2, x0.options()), nonzero_before = torch::full({m}, values, x0.options());
    if (l1 && !leg.from_start) {
      nonzero_before = (xk - x0).flatten(1).ne(0).sum(1).to(x0.scalar_type());
      top = nonzero_before / values / 1.5;
    }
    torch::Tensor rises = torch::zeros({m}, x0.options());
    torch::Tensor loss_best_at_check = loss_best.clone();
    torch::Tensor halved_at_check = torch::zeros({m}, torch::TensorOptions().dtype(torch::kBool).device(x0.device()));
    const int64_t first = std::max<int64_t>(static_cast<int64_t>(0.22 * steps), 1);
    const int64_t shrink = std::max<int64_t>(static_cast<int64_t>(0.03 * steps), 1);
    const int64_t shortest = std::max<int64_t>(static_cast<int64_t>(0.06 * steps), 1);
    int64_t interval = l1 ? std::max<int64_t>(static_cast<int64_t>(0.04 * steps), 1) : first, since_check = 0;

    for (int64_t k = 0; k < steps; ++k) {
      {
        torch::NoGradGuard ng;
        if (l1) {
          xk = detail::project_l1_box(xk + per_image(eta) * sparse_direction(grad, top), x0, eps);
        } else {
          torch::Tensor z = project(xk + per_image(eta) * direction(grad), x0);
          const double a = k == 0 ? 1.0 : kMomentum;
          torch::Tensor next = project(xk + a * (z - xk) + (1 - a) * (xk - x_prev), x0);
          x_prev = xk;
          xk = next;
        }
      }
      evaluate(xk, loss, grad);
      c.r.iterations.index_add_(0, rows, torch::ones({m}, c.r.iterations.options()));
      torch::NoGradGuard ng;
      rises.add_(loss.gt(loss_prev).to(rises.scalar_type()));
      loss_prev = loss;
      torch::Tensor better = loss.gt(loss_best);
      x_best = torch::where(per_image(better), xk, x_best);
      grad_best = torch::where(per_image(better), grad, grad_best);
      loss_best = torch::where(better, loss, loss_best);
      if (++since_check == interval && l1) {
        const torch::Tensor nonzero = (x_best - x0).flatten(1).ne(0).sum(1).to(x0.scalar_type());
        const torch::Tensor sparser = (nonzero / nonzero_before).lt(0.95);
        top = nonzero / values / 1.5;
        eta = torch::where(sparser, torch::full_like(eta, eps), eta / 1.5).clamp(eps / 10, eps);
        nonzero_before = nonzero;
        xk = torch::where(per_image(sparser), x_best, xk);
        grad = torch::where(per_image(sparser), grad_best, grad);
        since_check = 0;
      } else if (since_check == interval) {
        torch::Tensor oscillating = rises.lt(kRho * static_cast<double>(interval));
        torch::Tensor stalled = halved_at_check.logical_not().logical_and(loss_best.le(loss_best_at_check));
        torch::Tensor halve = oscillating.logical_or(stalled);
        eta = torch::where(halve, eta / 2, eta);
        xk = torch::where(per_image(halve), x_best, xk);
        grad = torch::where(per_image(halve), grad_best, grad);
        x_prev = torch::where(per_image(halve), x_best, x_prev);  // no momentum across the jump back
        halved_at_check = halve;
        loss_best_at_check = loss_best.clone();
        rises.zero_();
        since_check = 0;
        interval = std::max(interval - shrink, shortest);
      }
    }
    return x_best;
  }

  Loss loss_;
  int64_t eot_samples_;
};

}  // namespace

namespace detail {

// Per value d_i = sign(v_i) min(max(|v_i| - lambda, 0), room_i), v = z - x0, room_i the box's room
// along v_i; lambda = 0 when that is inside the ball, else the one with ||d||_1 = eps (bisection, the
// upper end kept, so ||d||_1 <= eps).
torch::Tensor project_l1_box(const torch::Tensor& z, const torch::Tensor& x0, double eps) {
  const torch::Tensor x = x0.flatten(1), v = z.flatten(1) - x;
  const torch::Tensor mag = v.abs(), room = torch::where(v.gt(0), 1 - x, x);
  auto shrunk = [&](const torch::Tensor& lambda) { return torch::min((mag - lambda.unsqueeze(1)).clamp_min(0), room); };
  torch::Tensor lo = torch::zeros({v.size(0)}, v.options()), hi = mag.amax(1);
  const torch::Tensor inside = shrunk(lo).sum(1).le(eps);
  for (int i = 0; i < 48; ++i) {
    const torch::Tensor mid = (lo + hi) / 2;
    const torch::Tensor over = shrunk(mid).sum(1).gt(eps);
    lo = torch::where(over, mid, lo);
    hi = torch::where(over, hi, mid);
  }
  const torch::Tensor lambda = torch::where(inside, torch::zeros_like(hi), hi);
  return (x + v.sign() * shrunk(lambda)).clamp(0.0, 1.0).view_as(z);
}

}  // namespace detail

EotPass eot_gradient(Classifier& model, const torch::Tensor& x,
                     const std::function<torch::Tensor(const torch::Tensor& logits)>& loss, int64_t samples) {
  if (samples < 1) throw Error(fmt::format("--eot-samples must be >= 1 (got {})", samples));
  EotPass out;
  for (int64_t s = 0; s < samples; ++s) {
    torch::Tensor point = x.detach().requires_grad_(true);
    torch::Tensor logits = model.forward(point);
    torch::Tensor l = loss(logits);
    torch::Tensor g = torch::autograd::grad({l.sum()}, {point})[0].detach();
    out.grad = s == 0 ? g : out.grad.add_(g);
    out.loss = l.detach();
    out.logits = logits.detach();
  }
  // One sample: the gradient as computed, untouched (bit for bit the single-pass APGD).
  if (samples > 1) out.grad.div_(static_cast<double>(samples));
  return out;
}

std::unique_ptr<Attack> make_apgd_ce(const AttackOptions& options) {
  return std::make_unique<Apgd>(kApgdCe, options, Loss::CrossEntropy);
}
std::unique_ptr<Attack> make_apgd_dlr(const AttackOptions& options) {
  return std::make_unique<Apgd>(kApgdDlr, options, Loss::Dlr);
}
std::unique_ptr<Attack> make_apgd_t(const AttackOptions& options) {
  return std::make_unique<Apgd>(kApgdT, options, Loss::TargetedDlr);
}

std::unique_ptr<Attack> make_apgd_eot(const std::string& name, const AttackOptions& options, int64_t samples) {
  const std::string canonical = attack_info(name).name;
  if (canonical == kApgdCe) return std::make_unique<Apgd>(kApgdCe, options, Loss::CrossEntropy, samples);
  if (canonical == kApgdDlr) return std::make_unique<Apgd>(kApgdDlr, options, Loss::Dlr, samples);
  if (canonical == kApgdT) return std::make_unique<Apgd>(kApgdT, options, Loss::TargetedDlr, samples);
  if (samples == 1) return make_attack(canonical, options);
  throw Error(fmt::format("--eot-samples: {} takes one pass per step (apgd-ce, apgd-dlr and apgd-t average)", canonical));
}

}  // namespace sdsgsm
