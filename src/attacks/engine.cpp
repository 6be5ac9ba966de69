// The one iterative loop every attack runs (see include/sdsgsm/attacks.hpp).
#include <chrono>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "attack_common.hpp"
#include "sdsgsm/metrics.hpp"

namespace sdsgsm {
namespace {

namespace F = torch::nn::functional;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

torch::Tensor per_sample_mean_abs(const torch::Tensor& g) {
  return g.abs().mean({1, 2, 3}, /*keepdim=*/true);
}

}  // namespace

namespace detail {

at::Generator sample_generator(uint64_t seed, int64_t id, uint64_t stream) {
  return at::detail::createCPUGenerator(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(id) * 4 + stream)));
}

void check_attack_input(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 4) throw Error(fmt::format("attack input must be N x C x H x W (got {} dims)", x.dim()));
  if (y.dim() != 1 || y.size(0) != x.size(0)) throw Error("attack labels must be a vector of N labels");
}

torch::Tensor attack_targets(const AttackOptions& o, const torch::Tensor& y, const torch::Tensor& clean_logits,
                             const torch::Tensor& ids_cpu) {
  const int64_t n = y.size(0), k = clean_logits.size(1);
  torch::Tensor target = y.clone();
  if (o.targeted == TargetMode::Given) {
    if (o.target_label >= k) {
      throw Error(fmt::format("--target-label {} is not a class of this {}-class model", o.target_label, k));
    }
    target.fill_(o.target_label);
  } else if (o.targeted == TargetMode::Random) {
    auto t_cpu = target.to(torch::kCPU), y_cpu = y.to(torch::kCPU);
    auto* t = t_cpu.data_ptr<int64_t>();
    auto* yl = y_cpu.data_ptr<int64_t>();
    auto* id = ids_cpu.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      at::Generator gen = sample_generator(o.seed, id[i], 1);
      int64_t offset = torch::randint(1, k, {1}, gen, torch::kInt64).item<int64_t>();
      t[i] = (yl[i] + offset) % k;  // uniform over the other labels
    }
    target = t_cpu.to(y.device());
  } else if (o.targeted == TargetMode::LeastLikely) {
    target = clean_logits.argmin(1);
  }
  return target;
}

torch::Tensor clean_pass(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const AttackOptions& o,
                         const torch::Tensor& ids_cpu, AttackResult& r) {
  torch::Tensor clean_logits;
  {
    torch::NoGradGuard ng;
    clean_logits = model.forward(x);
  }
  r.clean_pred = clean_logits.argmax(1);
  r.target = attack_targets(o, y, clean_logits, ids_cpu);
  return clean_logits;
}

}  // namespace detail

TargetMode parse_target_mode(const std::string& text) {
  if (text == "none" || text.empty()) return TargetMode::None;
  if (text == "given") return TargetMode::Given;
  if (text == "random") return TargetMode::Random;
  if (text == "least-likely" || text == "ll") return TargetMode::LeastLikely;
  throw Error(fmt::format("--targeted must be none, given, random or least-likely (got '{}')", text));
}

std::string to_string(TargetMode mode) {
  switch (mode) {
    case TargetMode::None: return "none";
    case TargetMode::Given: return "given";
    case TargetMode::Random: return "random";
    case TargetMode::LeastLikely: return "least-likely";
  }
  return "none";
}

const OptionSet<AttackOptions>& AttackOptions::option_set() {
  using O = AttackOptions;
  constexpr unsigned kBounded = family_bit(AttackFamily::FixedBudget) | family_bit(AttackFamily::Adaptive) |
                                family_bit(AttackFamily::ScoreBased);
  constexpr unsigned kBall = family_bit(AttackFamily::Adaptive) | family_bit(AttackFamily::ScoreBased);
  auto refining = [](const O& o) { return o.refine > 0; };
  static const OptionSet<O> set(
      "budget",
      {
          option("eps", &O::eps, "Budget on the [0,1] scale (fractions allowed: 8/255): l_inf; an l2 or l1 radius with --norm 2 or 1")
              .in(kBounded)
              .shown("8/255")
              .checked([](const O& o) -> std::string {
                if (o.norm == Norm::L2 || o.norm == Norm::L1) {
                  if (!(o.eps > 0) || !std::isfinite(o.eps)) return fmt::format("--eps must be > 0 (got {})", o.eps);
                } else if (!(o.eps >= 0) || o.eps > 1) {
                  return fmt::format("--eps must be in [0, 1] (got {})", o.eps);
                }
                return "";
              }),
          option("alpha", &O::alpha, "Step size (fractions allowed); default: 2/255 for the baselines, eps/steps x step factor for SD-SGSM")
              .in(kBounded)
              .positive(),
          option("steps", &O::steps,
                 "Iterations; default: each attack's own (FGSM 1, the l_inf attacks 10, DeepFool 50, C&W 100 per "
                 "binary step, DDN and FMN 100)")
              .shown("")
              .at_least(1),
          option("decay", &O::decay, "Momentum decay mu; default: 1.0 for mifgsm/nifgsm, 0 (off) for the SD-SGSM family")
              .in(kBounded)
              .at_least(0),
          // Written as false when unset: the configurations keep their form.
          [] {
            auto f = option("early-stop", &O::early_stop,
                            "Freeze each sample as soon as it succeeds (fewer passes, less distortion); default for "
                            "SD-SGSM. --no-early-stop: attack every sample for all steps (the classic attacks' default)");
            f.get = [](const O& o) -> nlohmann::json { return o.early_stop.value_or(false); };
            return f.in(kBounded);
          }(),
          option("early-stop-8bit", &O::early_stop_8bit,
                 "Early stop, freezing a sample only when its adversarial rounded to 8-bit pixels (a saved PNG) "
                 "succeeds too")
              .in(kBounded)
              .when([](const O& o) { return o.early_stop_8bit; })  // only when on: older configurations keep their form
              .checked([](const O& o) -> std::string {
                return o.early_stop_8bit && o.early_stop == false ? "--early-stop-8bit needs early stop (drop --no-early-stop)"
                                                                   : "";
              }),
          option("random-start", &O::random_start, "Uniform start in the budget (PGD, APGD: on)")
              .in(kBounded)
              .internal(),
          option("seed", &O::seed, "Seed for random starts and random targets"),
          option("targeted", &O::targeted, "none, given (with --target-label), random or least-likely"),
          option("target-label", &O::target_label, "Target class for --targeted given")
              .shown("")
              .when([](const O& o) { return o.targeted == TargetMode::Given; })
              .checked([](const O& o) -> std::string {
                return o.targeted == TargetMode::Given && o.target_label < 0
                           ? "--targeted given needs --target-label L (a class index)"
                           : "";
              }),
          option("refine", &O::refine,
                 "After the attack, up to this many more model passes per image shrinking each adversarial that "
                 "fools once rounded to 8-bit pixels, keeping it fooling once rounded (quantised DDN steps from "
                 "the rounded adversarial); 0: off")
              .when(refining)
              .at_least(0),
          option("refine-step", &O::refine_step, "--refine: the step, times the perturbation's current l2 norm")
              .when(refining)
              .positive(),
          option("refine-gamma", &O::refine_gamma, "--refine: the norm's update factor eps * (1 -+ gamma)")
              .when(refining)
              .in_range(0, 1, RangeEnds::Open),
          // Only when set: the configurations of the attacks that take neither keep their form.
          option("norm", &O::norm, "The ball of apgd-ce, apgd-dlr, apgd-t, fab-t and square: 1, 2 or inf (default inf; with 2 or 1, --eps is an l2 or l1 radius)")
              .in(kBall),
          option("restarts", &O::restarts,
                 "apgd-ce, apgd-dlr, apgd-t: random restarts (per target) for the images still not fooled")
              .in(kBall)
              .when([](const O& o) { return o.restarts != 1; })
              .at_least(1),
          option("targets", &O::targets, "apgd-t, fab-t: target classes, the clean prediction's likeliest others")
              .in(family_bit(AttackFamily::Adaptive))
              .when([](const O& o) { return o.targets != 9; })
              .at_least(1),
          option("shrinking-radius", &O::shrinking_radius,
                 "apgd-ce, apgd-dlr, apgd-t with --norm 1: each restart through the radii 3 eps, 2 eps, eps "
                 "(ceil(0.3 steps) twice, then the rest), success counted at eps (AutoAttack's l1 schedule)")
              .in(family_bit(AttackFamily::Adaptive))
              .when([](const O& o) { return o.shrinking_radius; }),
          option("square-schedule", &O::square_schedule,
                 "square: how the window shrinks: stretched (the 10,000-query schedule over --steps) or autoattack "
                 "(the queries as counted, AutoAttack's standard version)")
              .in(family_bit(AttackFamily::ScoreBased))
              .when([](const O& o) { return o.square_schedule != "stretched"; })
              .one_of({"stretched", "autoattack"}),
      });
  return set;
}

void AttackOptions::validate() const { option_set().validate(*this); }

nlohmann::json AttackOptions::to_json() const { return option_set().to_json(*this); }

AttackOptions AttackOptions::from_json(const nlohmann::json& j) {
  AttackOptions o;
  option_set().read_json(j, o);
  return o;
}

torch::Tensor sign_direction(const torch::Tensor& g) { return g.sign(); }

EngineAttack::EngineAttack(std::string name, AttackOptions options, AttackHooks hooks)
    : Attack(std::move(name), std::move(options)), hooks_(std::move(hooks)) {
  options_.validate();
  // Factories set their family's defaults; these are the engine's own.
  if (!options_.alpha) options_.alpha = kDefaultAlpha;
  if (!options_.decay) options_.decay = hooks_.momentum ? 1.0 : 0.0;
  if (!options_.early_stop) options_.early_stop = false;
  if (options_.early_stop_8bit && !*options_.early_stop) {
    throw Error(fmt::format("--early-stop-8bit needs early stop, which {} does not use", name_));
  }
  if (!hooks_.direction) hooks_.direction = sign_direction;
  if (options_.norm && *options_.norm != Norm::Linf) {
    throw Error(fmt::format("--norm {}: {} is an l_inf attack (apgd-ce, apgd-dlr, apgd-t, fab-t and square take l2 and l1)",
                            *options_.norm == Norm::L2 ? "2" : "1", name_));
  }
  if (options_.restarts != 1) throw Error(fmt::format("--restarts: {} does not restart (APGD does)", name_));
}

nlohmann::json EngineAttack::config() const {
  nlohmann::json j = options_.to_json();
  j["attack"] = name_;
  if (!hooks_.momentum) j.erase("decay");
  j["momentum"] = hooks_.momentum;
  j["nesterov"] = hooks_.nesterov;
  j["allocation"] = hooks_.allocation ? "map" : "uniform";
  j["direction"] = hooks_.parameters.value("direction", std::string("sign"));
  for (const auto& [key, value] : hooks_.parameters.items()) j[key] = value;
  return j;
}

void EngineAttack::check_input(const torch::Tensor& x) const {
  if (hooks_.check_input) hooks_.check_input(x);
}

void EngineAttack::attack(AttackContext& c) const {
  const AttackOptions& o = options_;
  Classifier& model = c.model;
  AttackResult& r = c.r;
  const torch::Tensor& x = c.x;
  const torch::Tensor& y = c.y;
  const torch::Tensor& ids = c.ids;
  const int64_t n = c.size();
  const auto dev = x.device();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(dev);
  const int64_t steps = o.steps;
  const double alpha = *o.alpha;
  const double decay = *o.decay;
  const bool targeted = c.targeted;
  const torch::Tensor& target = r.target;
  const torch::Tensor& clean_logits = c.clean_logits;
  auto succeeded = [&](const torch::Tensor& pred, const torch::Tensor& idx) { return c.succeeded(pred, idx); };

  // With early stop and a clean start, a sample that already succeeds is frozen before its first
  // step: it needs no allocation map (SD-SGSM's DDI is the costly part) and is decided by the
  // clean prediction, so the two can never disagree.
  const bool clean_start_freeze = *o.early_stop && !o.random_start;
  const torch::Tensor all_rows = torch::arange(n, i64);
  const torch::Tensor start_done =
      clean_start_freeze ? succeeded(r.clean_pred, all_rows) : torch::zeros({n}, i64.dtype(torch::kBool));

  // Allocation map M (uniform unless the attack sets one), budget and step maps.
  torch::Tensor eps_map, step_map;
  const int64_t allocation_passes = hooks_.allocation_passes ? hooks_.allocation_passes(x.size(2), x.size(3)) : 0;
  auto allocate = [&](const torch::Tensor& at, int64_t iteration, const torch::Tensor& rows) {
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor m;
    if (iteration == 0 && start_done.any().item<bool>()) {
      m = torch::ones({n, 1, at.size(2), at.size(3)}, x.options());
      torch::Tensor todo = start_done.logical_not().nonzero().squeeze(1);
      if (todo.size(0) > 0) {
        torch::Tensor xs = at.index_select(0, todo), ys = y.index_select(0, todo), is = ids.index_select(0, todo);
        AllocationInput in{xs, ys, is, 0, clean_logits.index_select(0, todo)};
        m.index_copy_(0, todo, hooks_.allocation(model, in).to(torch::kFloat32));
        c.count_forward(todo, allocation_passes);
      }
    } else {
      AllocationInput in{at, y, ids, iteration, iteration == 0 ? clean_logits : torch::Tensor()};
      m = hooks_.allocation(model, in).to(torch::kFloat32);
      // Recomputed maps cost the samples still attacked (rows) a pass on the iterate too.
      c.count_forward(rows, allocation_passes + (iteration == 0 ? 0 : 1));
    }
    r.allocation_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return m;
  };
  auto set_maps = [&](const torch::Tensor& weight) {
    eps_map = weight * o.eps;
    step_map = hooks_.rescale_step ? weight * (alpha / weight.mean({1, 2, 3}, true).clamp_min(1e-12))
                                   : weight * alpha;
  };
  set_maps(hooks_.allocation ? allocate(x, 0, {}) : torch::ones({n, 1, 1, 1}, x.options()));

  torch::Tensor adv = x.clone();
  if (o.random_start) {
    auto noise = torch::empty(x.sizes(), torch::kFloat32);
    auto* id = c.ids_cpu.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      at::Generator gen = detail::sample_generator(o.seed, id[i], 0);
      noise[i].uniform_(-1.0, 1.0, gen);
    }
    adv = torch::clamp(x + noise.to(dev) * eps_map, 0.0, 1.0);
  }
  torch::Tensor g = torch::zeros_like(x);
  torch::Tensor active = all_rows;
  const auto sum_ce = F::CrossEntropyFuncOptions().reduction(torch::kSum);

  for (int64_t t = 0; t < steps && active.size(0) > 0; ++t) {
    if (hooks_.allocation && hooks_.reallocate_every > 0 && t > 0 && t % hooks_.reallocate_every == 0) {
      set_maps(allocate(adv, t, active));
    }
    const bool all = active.size(0) == n;
    auto take = [&](const torch::Tensor& v) { return all ? v : v.index_select(0, active); };
    torch::Tensor xa = take(adv);
    torch::Tensor ga = hooks_.momentum ? take(g) : torch::Tensor();
    torch::Tensor sa = step_map.size(0) == 1 ? step_map : take(step_map);
    torch::Tensor point = hooks_.nesterov ? xa + sa * decay * ga : xa;
    point = point.detach().requires_grad_(true);
    torch::Tensor logits = model.forward(point);
    // Passes are counted for the rows that go through them (the backward too: the rows that
    // leave below are still in the batch it runs on).
    const torch::Tensor passed = active;
    c.count_forward(passed);
    const bool decided_by_clean = t == 0 && clean_start_freeze;

    torch::Tensor rows;  // rows of this forward pass that stay in the attack (undefined: all)
    if (*o.early_stop) {
      torch::Tensor pred;
      if (decided_by_clean) {
        pred = r.clean_pred;
      } else if (hooks_.nesterov) {
        torch::NoGradGuard ng;
        pred = model.forward(xa).argmax(1);
        c.count_forward(active);
      } else {
        pred = logits.detach().argmax(1);
      }
      torch::Tensor keep = succeeded(pred, active).logical_not();
      if (o.early_stop_8bit && !decided_by_clean) {
        // Of the samples about to leave, those whose 8-bit rounded adversarial does not succeed
        // stay in the attack.
        torch::Tensor leaving = keep.logical_not().nonzero().squeeze(1);
        if (leaving.size(0) > 0) {
          torch::NoGradGuard ng;
          torch::Tensor pred8 = model.forward(quantize_8bit(xa.index_select(0, leaving))).argmax(1);
          c.count_forward(active.index_select(0, leaving));
          torch::Tensor fails8 = succeeded(pred8, active.index_select(0, leaving)).logical_not();
          keep.index_fill_(0, leaving.masked_select(fails8), true);
        }
      }
      if (!keep.all().item<bool>()) {
        // Samples that already succeed are frozen and leave the batch.
        rows = keep.nonzero().squeeze(1);
        if (rows.size(0) == 0) break;
        active = active.index_select(0, rows);
        logits = logits.index_select(0, rows);
        xa = xa.index_select(0, rows);
        if (ga.defined()) ga = ga.index_select(0, rows);
        if (sa.size(0) != 1) sa = sa.index_select(0, rows);
      }
    }
    const bool all_left = active.size(0) == n;
    const torch::Tensor& lab = targeted ? target : y;
    torch::Tensor loss = F::cross_entropy(logits, all_left ? lab : lab.index_select(0, active), sum_ce);
    if (targeted) loss = -loss;
    torch::Tensor grad = torch::autograd::grad({loss}, {point})[0];
    c.count_backward(passed);
    if (rows.defined()) grad = grad.index_select(0, rows);
    if (t == 0) r.zero_gradient_samples = grad.abs().amax({1, 2, 3}).eq(0).sum().item<int64_t>();

    torch::Tensor dir_in = grad;
    if (hooks_.momentum) {
      ga = decay * ga + grad / per_sample_mean_abs(grad).clamp_min(1e-12);
      dir_in = ga;
    }
    torch::Tensor x0 = all_left ? x : x.index_select(0, active);
    torch::Tensor ea = (eps_map.size(0) == 1 || all_left) ? eps_map : eps_map.index_select(0, active);
    torch::Tensor next = xa + sa * hooks_.direction(dir_in);
    next = torch::min(torch::max(next, x0 - ea), x0 + ea).clamp_(0.0, 1.0);
    if (all_left) {
      adv = next;
      if (hooks_.momentum) g = ga;
      r.iterations.add_(1);
    } else {
      adv.index_copy_(0, active, next);
      if (hooks_.momentum) g.index_copy_(0, active, ga);
      r.iterations.index_add_(0, active, torch::ones({active.size(0)}, i64));
    }
  }
  r.adversarial = adv.detach();
}

}  // namespace sdsgsm
