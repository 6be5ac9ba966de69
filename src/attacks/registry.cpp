// The attack registry: one row per attack (name, label, family, budget, targeting, default steps,
// help line) and its factory. Everything that lists or classifies attacks reads this table.
#include <functional>

#include <fmt/format.h>

#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
namespace {

using Factory = std::function<std::unique_ptr<Attack>(const AttackOptions&, const SdsgsmOptions&, const MinNormOptions&)>;

struct Row {
  AttackInfo info;
  Factory make;
};

/// An attack that takes only the shared options.
Factory engine(std::unique_ptr<Attack> (*f)(const AttackOptions&)) {
  return [f](const AttackOptions& o, const SdsgsmOptions&, const MinNormOptions&) { return f(o); };
}
Factory min_norm(std::unique_ptr<Attack> (*f)(const AttackOptions&, const MinNormOptions&)) {
  return [f](const AttackOptions& o, const SdsgsmOptions&, const MinNormOptions& mn) { return f(o, mn); };
}
Factory sdsgsm_variant(const char* variant) {
  return [variant](const AttackOptions& o, const SdsgsmOptions& sd, const MinNormOptions&) {
    return make_sdsgsm_variant(variant, o, sd);
  };
}

const std::vector<Row>& rows() {
  using F = AttackFamily;
  static const std::vector<Row> table = {
      {{"fgsm", "FGSM", F::FixedBudget, true, true, 1, "one step of eps along sign(grad)", {}}, engine(make_fgsm)},
      {{"ifgsm", "I-FGSM", F::FixedBudget, true, true, 10, "iterated FGSM (BIM)", {"bim"}}, engine(make_ifgsm)},
      {{"mifgsm", "MI-FGSM", F::FixedBudget, true, true, 10, "I-FGSM with momentum", {}}, engine(make_mifgsm)},
      {{"nifgsm", "NI-FGSM", F::FixedBudget, true, true, 10, "MI-FGSM with the Nesterov look-ahead", {}},
       engine(make_nifgsm)},
      {{"pgd", "PGD", F::FixedBudget, true, true, 10, "I-FGSM from a random start", {}}, engine(make_pgd)},
      {{"sdsgsm", "SD-SGSM", F::FixedBudget, true, true, 10, "DDI allocation map + tanh-smoothed step", {}},
       sdsgsm_variant("sdsgsm")},
      {{"sd-ifgsm", "SD-IFGSM", F::FixedBudget, true, true, 10, "DDI allocation map + sign step (ablation)", {}},
       sdsgsm_variant("sd-ifgsm")},
      {{"sgsm", "SGSM", F::FixedBudget, true, true, 10, "uniform map + tanh-smoothed step (ablation)", {}},
       sdsgsm_variant("sgsm")},
      // Minimum-norm attacks: the step counts of their papers' shorter settings (DeepFool's 50, DDN's
      // and FMN's 100, C&W's 9 binary steps of 100 Adam steps: its paper runs 10,000).
      {{"deepfool", "DeepFool", F::MinimumNorm, false, true, 50, "minimum-norm: linearised boundary steps", {}},
       min_norm(make_deepfool)},
      {{"cw", "C&W", F::MinimumNorm, false, true, 100, "minimum-norm: Carlini-Wagner l2 (Adam, binary search)", {}},
       min_norm(make_cw)},
      {{"ddn", "DDN", F::MinimumNorm, false, true, 100, "minimum-norm: decoupled direction and norm (l2)", {}},
       min_norm(make_ddn)},
      {{"fmn", "FMN", F::MinimumNorm, false, true, 100, "minimum-norm: fast minimum-norm (l2 or l_inf)", {}},
       min_norm(make_fmn)},
      // APGD and Square: AutoAttack's standard version runs 100 APGD steps and 5000 Square queries.
      {{"apgd-ce", "APGD-CE", F::Adaptive, true, false, 100, "APGD on the cross-entropy (l_inf or l2)", {}},
       engine(make_apgd_ce)},
      {{"apgd-dlr", "APGD-DLR", F::Adaptive, true, false, 100, "APGD on the DLR loss (l_inf or l2)", {}},
       engine(make_apgd_dlr)},
      {{"apgd-t", "APGD-T", F::Adaptive, true, false, 100, "APGD on the targeted DLR loss, 9 target classes", {}},
       engine(make_apgd_t)},
      {{"square", "Square", F::ScoreBased, true, true, 5000, "gradient-free random search (l_inf; --steps queries)", {}},
       engine(make_square)},
  };
  return table;
}

const Row& row(const std::string& name) {
  for (const auto& r : rows()) {
    if (r.info.name == name) return r;
    for (const auto& a : r.info.aliases) {
      if (a == name) return r;
    }
  }
  std::string known;
  for (const auto& a : attack_names()) known += (known.empty() ? "" : ", ") + a;
  throw Error(fmt::format("unknown attack '{}' (known: {})", name, known));
}

}  // namespace

std::string to_string(AttackFamily family) {
  switch (family) {
    case AttackFamily::FixedBudget: return "fixed budget";
    case AttackFamily::MinimumNorm: return "minimum norm";
    case AttackFamily::Adaptive: return "adaptive step";
    case AttackFamily::ScoreBased: return "score-based";
  }
  return "?";
}

const std::vector<AttackInfo>& attack_registry() {
  static const std::vector<AttackInfo> infos = [] {
    std::vector<AttackInfo> v;
    for (const auto& r : rows()) v.push_back(r.info);
    return v;
  }();
  return infos;
}

const AttackInfo& attack_info(const std::string& name) { return row(name).info; }

std::vector<std::string> attack_names() {
  std::vector<std::string> names;
  for (const auto& r : rows()) names.push_back(r.info.name);
  return names;
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options) {
  return make_attack(name, options, SdsgsmOptions());
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd) {
  return make_attack(name, options, sd, MinNormOptions());
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd,
                                    const MinNormOptions& mn) {
  return row(name).make(options, sd, mn);
}

}  // namespace sdsgsm
