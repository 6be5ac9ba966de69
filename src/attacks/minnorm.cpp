// The minimum-norm attacks' options and their shared base (see minnorm.hpp).
#include "minnorm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "attack_common.hpp"
#include "refine.hpp"

namespace sdsgsm {

Norm parse_norm(const std::string& text) {
  if (text == "2" || text == "l2" || text == "L2") return Norm::L2;
  if (text == "inf" || text == "linf" || text == "Linf") return Norm::Linf;
  if (text == "1" || text == "l1" || text == "L1") return Norm::L1;
  throw Error(fmt::format("--norm must be 1, 2 or inf (got '{}')", text));
}

std::string to_string(Norm norm) {
  switch (norm) {
    case Norm::L2: return "l2";
    case Norm::Linf: return "linf";
    case Norm::L1: return "l1";
  }
  return "?";
}

std::string norm_label(Norm norm) { return norm == Norm::Linf ? "l_inf" : to_string(norm); }

const OptionSet<MinNormOptions>& MinNormOptions::option_set() {
  using O = MinNormOptions;
  constexpr unsigned kMinNorm = family_bit(AttackFamily::MinimumNorm);
  static const OptionSet<O> set(
      "minimum-norm",
      {
          option("norm", &O::norm, "Distance minimised by deepfool and fmn: 2 or inf (default 2; cw and ddn: 2 only)")
              .in(kMinNorm)
              .group(kEveryMinNormAttack),
          option("candidates", &O::candidates, "deepfool: classes considered, the clean top-k (0: all)")
              .in(kMinNorm)
              .checked([](const O& o) {
                return o.candidates < 0 || o.candidates == 1
                           ? fmt::format("--candidates must be 0 (all classes) or >= 2 (got {})", o.candidates)
                           : "";
              }),
          option("overshoot", &O::overshoot, "deepfool: overshoot of each step past the boundary")
              .in(kMinNorm)
              .at_least(0),
          option("binary-steps", &O::binary_steps, "cw: binary-search steps over the constant c (x --steps Adam steps)")
              .in(kMinNorm)
              .at_least(1),
          option("initial-const", &O::initial_const, "cw: c of the first binary-search step")
              .in(kMinNorm)
              .positive(),
          option("confidence", &O::confidence, "cw: confidence kappa (logit margin of a success)")
              .in(kMinNorm)
              .at_least(0),
          option("learning-rate", &O::learning_rate,
                 "Step size; default: cw 0.01 (Adam), ddn 1 (l2 step), fmn 1 (x the current norm); ddn and fmn "
                 "anneal it to 1/100")
              .in(kMinNorm)
              .positive(),
          option("norm-gamma", &O::norm_gamma, "ddn, fmn: the norm's update factor eps * (1 -+ gamma)")
              .in(kMinNorm)
              .in_range(0, 1, RangeEnds::Open),
          option("initial-norm", &O::initial_norm, "ddn: the l2 norm of the first step")
              .in(kMinNorm)
              .positive(),
          option("levels", &O::levels,
                 "Values per channel of the grid a saved image lies on (256: 8-bit pixels; 0: none): ddn rounds each "
                 "iterate to it, deepfool, cw and fmn push their adversarials onto it")
              .in(kMinNorm)
              .group(kEveryMinNormAttack)
              .checked([](const O& o) {
                return o.levels == 1 || o.levels < 0 || o.levels > 65536
                           ? fmt::format("--levels must be 0 (no grid) or in [2, 65536] (got {})", o.levels)
                           : "";
              }),
      });
  return set;
}

void MinNormOptions::validate() const { option_set().validate(*this); }

nlohmann::json MinNormOptions::to_json() const { return option_set().to_json(*this); }

MinNormOptions MinNormOptions::from_json(const nlohmann::json& j) {
  MinNormOptions o;
  option_set().read_json(j, o);
  return o;
}

namespace detail {

namespace {
/// Forward passes the rounding-aware finish may spend per sample: the whole scale ladder.
constexpr int64_t kSnapPasses = 12;
}  // namespace

double cosine_schedule(double a0, double a_final, int64_t k, int64_t steps) {
  return a_final + (a0 - a_final) * 0.5 * (1 + std::cos(M_PI * static_cast<double>(k) / static_cast<double>(steps)));
}

MinNormProblem::MinNormProblem(Classifier& model_, torch::Tensor x_, torch::Tensor label_, torch::Tensor clean_logits_,
                               bool targeted_, Norm norm_)
    : model(model_),
      x(std::move(x_)),
      label(std::move(label_)),
      clean_logits(std::move(clean_logits_)),
      targeted(targeted_),
      norm(norm_) {
  best_adv = x.clone();
  best_norm = torch::full({size()}, std::numeric_limits<float>::infinity(), x.options());
  iterations = torch::zeros({size()}, label.options());
  forward_passes = torch::zeros({size()}, label.options());
  backward_passes = torch::zeros({size()}, label.options());
}

torch::Tensor MinNormProblem::take(const torch::Tensor& v, const torch::Tensor& rows) {
  return rows.defined() ? v.index_select(0, rows) : v;
}

MinNormProblem::Evaluation MinNormProblem::differentiate(const torch::Tensor& v, const torch::Tensor& rows,
                                                         const Loss& loss,
                                                         const std::function<torch::Tensor(const torch::Tensor&)>& to_image) {
  torch::Tensor var = v.detach().requires_grad_(true);
  torch::Tensor image = to_image ? to_image(var) : var;
  torch::Tensor logits = model.forward(image);
  torch::Tensor l = loss(logits, image, take(label, rows));
  torch::Tensor grad = torch::autograd::grad({l.sum()}, {var})[0];
  if (zero_gradient_samples < 0) zero_gradient_samples = grad.abs().flatten(1).amax(1).eq(0).sum().item<int64_t>();
  count_step(rows);
  count_passes(rows, 1, 1);
  return {logits.detach(), image.detach(), l.detach(), grad};
}

torch::Tensor MinNormProblem::margin(const torch::Tensor& logits, const torch::Tensor& lab) const {
  return attack_margin(logits, lab, targeted);
}

torch::Tensor MinNormProblem::fooled(const torch::Tensor& logits, const torch::Tensor& lab) const {
  return attack_success(logits.argmax(1), lab, targeted);
}

torch::Tensor MinNormProblem::distance(const torch::Tensor& delta) const {
  torch::Tensor d = delta.flatten(1);
  return norm == Norm::L2 ? d.norm(2, 1) : d.abs().amax(1);
}

torch::Tensor MinNormProblem::record(const torch::Tensor& adv, const torch::Tensor& logits, const torch::Tensor& rows,
                                     const torch::Tensor& also) {
  torch::NoGradGuard ng;
  torch::Tensor ok = fooled(logits, take(label, rows));
  torch::Tensor d = distance(adv - take(x, rows));
  torch::Tensor better = ok.logical_and(d.lt(take(best_norm, rows)));
  if (also.defined()) better.logical_and_(also);
  torch::Tensor sel = better.nonzero().squeeze(1);
  if (sel.size(0) > 0) {
    torch::Tensor at = rows.defined() ? rows.index_select(0, sel) : sel;
    best_adv.index_copy_(0, at, adv.index_select(0, sel));
    best_norm.index_copy_(0, at, d.index_select(0, sel));
  }
  return ok;
}

torch::Tensor MinNormProblem::check(const torch::Tensor& adv, const torch::Tensor& rows) {
  torch::NoGradGuard ng;
  count_passes(rows, 1);
  return record(adv, model.forward(adv), rows);
}

void MinNormProblem::count_passes(const torch::Tensor& rows, int64_t forward, int64_t backward) {
  for (auto [counter, k] : {std::pair{&forward_passes, forward}, std::pair{&backward_passes, backward}}) {
    if (k == 0) continue;
    if (rows.defined()) {
      counter->index_add_(0, rows, torch::full({rows.size(0)}, k, counter->options()));
    } else {
      counter->add_(k);
    }
  }
}

void MinNormProblem::count_step(const torch::Tensor& rows) {
  if (rows.defined()) {
    iterations.index_add_(0, rows, torch::ones({rows.size(0)}, iterations.options()));
  } else {
    iterations.add_(1);
  }
}

MinNormAttack::MinNormAttack(std::string name, AttackOptions options, MinNormOptions mn, bool linf)
    : Attack(std::move(name), std::move(options)), mn_(std::move(mn)) {
  options_.validate();
  mn_.validate();
  if (mn_.norm == Norm::L1) throw Error(fmt::format("--norm 1: {} measures l2 or l_inf (l1: apgd-ce, apgd-t, fab-t, square)", name_));
  if (mn_.norm == Norm::Linf && !linf) {
    throw Error(fmt::format("{} is an l2 attack: --norm inf applies to deepfool and fmn", name_));
  }
}

nlohmann::json MinNormAttack::config() const {
  // The shared options that apply to the minimum-norm family, the options every minimum-norm
  // attack takes, then the attack's own parameters.
  nlohmann::json j = AttackOptions::option_set().to_json(options_, family_bit(AttackFamily::MinimumNorm));
  j["attack"] = name_;
  j["bounded"] = false;
  j.update(MinNormOptions::option_set().to_json(
      mn_, [](const OptionField<MinNormOptions>& f) { return f.part == MinNormOptions::kEveryMinNormAttack; }));
  j.update(parameters());
  return j;
}

void MinNormAttack::attack(AttackContext& c) const {
  AttackResult& r = c.r;
  // Samples the clean image already fools keep it (no perturbation, no steps).
  const torch::Tensor rows = c.succeeded(r.clean_pred).logical_not().nonzero().squeeze(1);
  r.adversarial = c.x.clone();
  if (rows.size(0) == 0) return;
  MinNormProblem p(c.model, c.x.index_select(0, rows), c.goal().index_select(0, rows),
                   c.clean_logits.index_select(0, rows), c.targeted, mn_.norm);
  minimize(p);
  r.adversarial.index_copy_(0, rows, p.best_adv);
  r.iterations.index_copy_(0, rows, p.iterations);
  r.forward_passes.index_add_(0, rows, p.forward_passes);
  r.backward_passes.index_add_(0, rows, p.backward_passes);
  r.zero_gradient_samples = std::max<int64_t>(p.zero_gradient_samples, 0);
  if (mn_.levels > 0 && !iterates_on_grid()) {
    // The adversarials found, pushed onto the grid a saved image has (rows the attack fooled).
    const torch::Tensor found = rows.masked_select(p.found());
    snap_to_grid(c, found, mn_.levels, kSnapPasses, -1);
  }
}

}  // namespace detail
}  // namespace sdsgsm
