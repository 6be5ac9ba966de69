// The masking checks of a robust-accuracy evaluation (see include/sdsgsm/robust.hpp): kept apart
// from the sequence they judge.
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "robust_internal.hpp"
#include "sdsgsm/eot.hpp"
#include "sdsgsm/evaluation.hpp"

namespace sdsgsm::robust_detail {
namespace {

constexpr double kLargeLinf = 0.5;  ///< the large-eps check's l_inf budget (l2: times sqrt(C H W); l1: times C H W)
constexpr double kSquarePoints = 0.2;  ///< gradient-free: points of robust accuracy (AutoAttack's threshold)
constexpr double kRandomTolerance = 1e-5;  ///< randomness: largest change of the l2-normalised logits
constexpr double kProbabilityTolerance = 1e-4;  ///< probabilities: |row sum - 1|

std::string eps_text(double eps, Norm norm) {
  if (norm == Norm::Linf) return fmt::format("l_inf {:.4g} ({:.3g}/255)", eps, eps * 255);
  return fmt::format("{} {:.4g}", to_string(norm), eps);
}

RobustCheck named(const char* name) {
  RobustCheck c;
  c.name = name;
  return c;
}

/// gradient-free: the score-based attacks of the sequence fooled images the gradient attacks
/// before them left robust.
RobustCheck gradient_free_check(const RobustOptions& o, const std::vector<std::string>& names, RobustResult& res) {
  int64_t gradient_robust = -1, free_fooled = 0;
  std::string free_names;
  for (size_t k = 0; k < names.size(); ++k) {
    if (attack_info(names[k]).family == AttackFamily::ScoreBased) {
      free_fooled += res.stages[k].fooled;
      free_names += (free_names.empty() ? "" : ", ") + res.stages[k].label;
      if (gradient_robust < 0) gradient_robust = res.stages[k].attacked;
    }
  }
  RobustCheck check = named("gradient-free");
  if (!free_names.empty()) {
    const double points = res.images ? 100.0 * static_cast<double>(free_fooled) / static_cast<double>(res.images) : 0;
    check.ran = true;
    check.warned = points > kSquarePoints;
    check.detail = fmt::format("{} fooled {} of the {} images the gradient attacks before it left robust ({:.2f} points "
                               "of robust accuracy; warns above {}, AutoAttack's threshold)",
                               free_names, free_fooled, gradient_robust, points, kSquarePoints);
  } else {
    check.detail = "not run (no gradient-free attack in the sequence)";
    res.notes.push_back(o.norm == Norm::L2
                            ? "no gradient-free attack in the l2 sequence: masking would not show"
                            : "no gradient-free attack in the sequence: masking would not show");
  }
  return check;
}

}  // namespace

void add_masking_checks(Classifier& model, const ImageSource& source, const RobustOptions& o,
                        const std::vector<std::string>& names, RobustResult& res, const fs::path& checks_file) {
  res.checks.push_back(gradient_free_check(o, names, res));

  RobustCheck steps_check = named("more-steps"), large_check = named("large-eps");
  const int64_t m = std::min(o.check_count, res.images);
  if (!checks_file.empty() && fs::exists(checks_file)) {
    auto j = nlohmann::json::parse(read_file(checks_file));
    for (auto* c : {&steps_check, &large_check}) {
      const auto& e = j.at(c->name);
      c->ran = e.at("ran").get<bool>();
      c->warned = e.at("warned").get<bool>();
      c->detail = e.at("detail").get<std::string>();
    }
  } else if (m > 0 && !names.empty()) {
    const std::string first = names[0];
    const AttackInfo& info = attack_info(first);
    int64_t eot = 1;  // the first stage's EOT passes (rand: 20)
    for (const auto& p : o.plan()) {
      if (p.attack == info.name) eot = p.eot_samples;
    }
    auto [x, y] = source.read_float(0, m);
    x = x.to(o.device);
    y = y.to(o.device).to(torch::kInt64);
    const torch::Tensor ids = torch::arange(o.first_index, o.first_index + m, torch::kInt64).to(o.device);
    const torch::Tensor correct = res.fooled_by.narrow(0, 0, m).ge(0);
    const torch::Tensor rows = correct.nonzero().squeeze(1);
    const int64_t correct_n = rows.size(0);
    // Robust after the first attack at full strength: what the sequence's first stage left.
    const int64_t full_robust = res.fooled_by.narrow(0, 0, m).masked_select(correct).ne(0).sum().item<int64_t>();
    if (correct_n > 0) {
      if (info.family != AttackFamily::ScoreBased) {
        AttackOptions fewer = o.attack_options(first, o.eps);
        fewer.set_steps(std::max<int64_t>(fewer.steps / 5, 1));
        auto a = make_apgd_eot(first, fewer, eot);
        const int64_t short_robust =
            correct_n - attack_rows(model, *a, x, y, ids, rows.to(o.device), nullptr).sum().item<int64_t>();
        steps_check.ran = true;
        steps_check.warned = full_robust > short_robust;
        steps_check.detail = fmt::format("{} left {} of {} images robust at {} steps, {} at {} steps", info.label,
                                         full_robust, correct_n, o.attack_options(first, o.eps).steps, short_robust,
                                         fewer.steps);
      }
      const double values = static_cast<double>(x[0].numel());
      const double large = o.norm == Norm::Linf ? kLargeLinf : o.norm == Norm::L2 ? kLargeLinf * std::sqrt(values) : kLargeLinf * values;
      auto a = make_apgd_eot(first, o.attack_options(first, large), eot);
      const int64_t large_robust =
          correct_n - attack_rows(model, *a, x, y, ids, rows.to(o.device), nullptr).sum().item<int64_t>();
      large_check.ran = true;
      large_check.warned = large_robust > 0;
      large_check.detail = fmt::format("{} at {} left {} of {} images robust (expected: none)", info.label,
                                       eps_text(large, o.norm), large_robust, correct_n);
    }
    if (!checks_file.empty()) {
      nlohmann::json j;
      for (auto* c : {&steps_check, &large_check}) j[c->name] = {{"ran", c->ran}, {"warned", c->warned}, {"detail", c->detail}};
      write_file_atomic(checks_file, j.dump());
    }
  }
  if (!steps_check.ran && steps_check.detail.empty()) steps_check.detail = "not run (no images, or a gradient-free first attack)";
  if (!large_check.ran && large_check.detail.empty()) large_check.detail = "not run (no correctly classified image among the first)";
  res.checks.push_back(steps_check);
  res.checks.push_back(large_check);
}

std::vector<RobustCheck> check_model(Classifier& model, const ImageSource& source, RobustOptions& o, RobustResult& res) {
  RobustCheck random = named("randomness"), probs = named("probabilities");
  const int64_t m = std::min(o.batch_size, source.size());
  if (m == 0) {
    random.detail = probs.detail = "not run (no images)";
    return {random, probs};
  }
  torch::Tensor a, b;
  {
    torch::NoGradGuard ng;
    torch::Tensor x = source.read_float(0, m).first.to(o.device);
    a = model.forward(x).detach().to(torch::kCPU, torch::kFloat64);
    b = model.forward(x).detach().to(torch::kCPU, torch::kFloat64);
  }
  res.classes = a.size(1);
  auto unit = [](const torch::Tensor& z) { return z / z.norm(2, {1}, true).clamp_min(1e-10); };
  const double diff = (unit(a) - unit(b)).abs().max().item<double>();
  random.ran = true;
  random.warned = diff > kRandomTolerance;
  const std::string seen = fmt::format("two passes of the first {} images differ by up to {:.3g} (l2-normalised logits; "
                                       "randomised above {})",
                                       m, diff, kRandomTolerance);
  if (!random.warned) {
    random.detail = seen;
  } else {
    const std::string v = o.version();
    int64_t passes = 1;
    for (const auto& p : o.plan()) passes = std::max(passes, p.eot_samples);
    if (passes > 1) {
      random.detail = fmt::format("{}: the model is randomised; the {} version averages each step's gradient over {} passes",
                                  seen, v, passes);
    } else if (!o.ensemble_given && v == "standard") {
      o.set_ensemble("rand");
      passes = o.plan().front().eot_samples;
      random.detail = fmt::format("{}: the model is randomised; the rand version ran instead of standard (APGD-CE and "
                                  "APGD-DLR, each step's gradient averaged over {} passes)",
                                  seen, passes);
      spdlog::warn("robust: {}", random.detail);
    } else {
      throw Error(fmt::format("the model is randomised: {}; --ensemble {} takes one pass per step: run --ensemble rand "
                              "(each step's gradient averaged over 20 passes) or give --eot-samples N",
                              seen, v));
    }
  }
  const double row_error = (a.sum(1) - 1).abs().max().item<double>();
  probs.ran = true;
  probs.warned = a.min().item<double>() >= 0 && a.max().item<double>() <= 1 && row_error <= kProbabilityTolerance;
  probs.detail = probs.warned
                     ? fmt::format("the outputs of the first {} images are probabilities (in [0,1], rows summing to 1 within "
                                   "{}): a softmax in the model flattens the cross-entropy's gradient; give it logits",
                                   m, kProbabilityTolerance)
                     : fmt::format("the outputs of the first {} images are not probabilities (outside [0,1] or rows not "
                                   "summing to 1 within {})",
                                   m, kProbabilityTolerance);
  return {random, probs};
}

std::vector<RobustStagePlan> adapt_to_classes(const std::vector<RobustStagePlan>& plan, int64_t classes,
                                              std::vector<std::string>& notes) {
  if (classes >= 3 || classes == 0) return plan;
  std::vector<RobustStagePlan> out;
  std::string left;
  for (const auto& p : plan) {
    if (p.attack == kApgdDlr || p.attack == kApgdT) {
      left += (left.empty() ? "" : ", ") + attack_info(p.attack).label;
    } else {
      out.push_back(p);
    }
  }
  if (!left.empty()) {
    notes.push_back(fmt::format("{} left out: the DLR loss needs 3 classes and the model has {} (on 2 classes every "
                                "attack pursues the one other class, as APGD-CE does)",
                                left, classes));
  }
  return out;
}

RobustCheck targets_check(const std::vector<RobustStagePlan>& plan, int64_t classes) {
  RobustCheck c = named("targets");
  std::vector<const RobustStagePlan*> targeted;
  for (const auto& p : plan) {
    if (p.attack == kApgdT || p.attack == kFabT) targeted.push_back(&p);
  }
  if (targeted.empty() || classes == 0) {
    c.detail = "not run (no targeted attack in the sequence)";
    return c;
  }
  c.ran = true;
  auto count = [&](int64_t asked) {
    const int64_t n = std::min(asked, classes - 1);
    return fmt::format("{} target class{}{}", n, n == 1 ? "" : "es", n < asked ? fmt::format(" instead of {}", asked) : "");
  };
  bool same = true;
  std::string labels, each;
  for (const auto* p : targeted) {
    c.warned = c.warned || classes - 1 < p->targets;
    same = same && p->targets == targeted.front()->targets;
    labels += (labels.empty() ? "" : ", ") + attack_info(p->attack).label;
    each += fmt::format("{}{} with {}", each.empty() ? "" : ", ", attack_info(p->attack).label, count(p->targets));
  }
  // One count for all ("APGD-T, FAB-T run with 9 target classes"), else one per attack.
  const std::string runs = same ? fmt::format("{} run with {}", labels, count(targeted.front()->targets)) : each;
  c.detail = fmt::format("the model has {} classes{} {}", classes, c.warned ? ", so" : ":", runs);
  return c;
}

std::vector<RobustStagePlan> checked_plan(Classifier& model, const ImageSource& source, RobustOptions& o,
                                          RobustResult& res, std::vector<RobustCheck>& checks) {
  for (auto& c : check_model(model, source, o, res)) checks.push_back(std::move(c));
  std::vector<RobustStagePlan> plan = adapt_to_classes(o.plan(), res.classes, res.notes);
  checks.push_back(targets_check(plan, res.classes));
  return plan;
}

}  // namespace sdsgsm::robust_detail
