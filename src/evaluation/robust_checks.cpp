// The masking checks of a robust-accuracy evaluation (see include/sdsgsm/robust.hpp): kept apart
// from the sequence they judge.
#include <cmath>

#include <fmt/format.h>

#include "robust_internal.hpp"
#include "sdsgsm/evaluation.hpp"

namespace sdsgsm::robust_detail {
namespace {

constexpr double kLargeLinf = 0.5;  ///< the large-eps check's l_inf budget (l2: times sqrt(C H W); l1: times C H W)

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
    check.ran = true;
    check.warned = free_fooled > 0;
    check.detail = fmt::format("{} fooled {} of the {} images the gradient attacks before it left robust", free_names,
                               free_fooled, gradient_robust);
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
        auto a = make_attack(first, fewer);
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
      auto a = make_attack(first, o.attack_options(first, large));
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

}  // namespace sdsgsm::robust_detail
