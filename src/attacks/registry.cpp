// The attack registry: one row per attack (name, label, family, budget, targeting, default steps,
// help line, traits) and its factory. Everything that lists or classifies attacks reads this table.
#include <functional>

#include <fmt/format.h>

#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

// Each attack's factory, defined in its own file (src/attacks/NAME.cpp); only this table calls them.
std::unique_ptr<Attack> make_fgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_ifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_mifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_nifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_pgd(const AttackOptions& options);
std::unique_ptr<Attack> make_deepfool(const AttackOptions& options, const MinNormOptions& mn);
std::unique_ptr<Attack> make_cw(const AttackOptions& options, const MinNormOptions& mn);
std::unique_ptr<Attack> make_ddn(const AttackOptions& options, const MinNormOptions& mn);
std::unique_ptr<Attack> make_fmn(const AttackOptions& options, const MinNormOptions& mn);
std::unique_ptr<Attack> make_apgd_ce(const AttackOptions& options);
std::unique_ptr<Attack> make_apgd_dlr(const AttackOptions& options);
std::unique_ptr<Attack> make_apgd_t(const AttackOptions& options);
std::unique_ptr<Attack> make_fab_t(const AttackOptions& options);
std::unique_ptr<Attack> make_square(const AttackOptions& options);

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
      {{kFgsm, "FGSM", F::FixedBudget, true, true, 1, "one step of eps along sign(grad)", {}, kTextbook | kTransfer},
       engine(make_fgsm)},
      {{kIfgsm, "I-FGSM", F::FixedBudget, true, true, 10, "iterated FGSM (BIM)", {"bim"}, kTextbook | kTransfer},
       engine(make_ifgsm)},
      {{kMifgsm, "MI-FGSM", F::FixedBudget, true, true, 10, "I-FGSM with momentum", {},
        kTextbook | kMomentum | kTransfer},
       engine(make_mifgsm)},
      {{kNifgsm, "NI-FGSM", F::FixedBudget, true, true, 10, "MI-FGSM with the Nesterov look-ahead", {},
        kTextbook | kMomentum | kTransfer},
       engine(make_nifgsm)},
      {{kPgd, "PGD", F::FixedBudget, true, true, 10, "I-FGSM from a random start", {}, kTextbook | kTransfer},
       engine(make_pgd)},
      {{kSdsgsm, "SD-SGSM", F::FixedBudget, true, true, 10, "DDI allocation map + tanh-smoothed step", {},
        kSdFamily | kMomentum | kDdiMap | kSmoothed | kTransfer},
       sdsgsm_variant(kSdsgsm)},
      {{kSdIfgsm, "SD-IFGSM", F::FixedBudget, true, true, 10, "DDI allocation map + sign step (ablation)", {},
        kSdFamily | kMomentum | kDdiMap},
       sdsgsm_variant(kSdIfgsm)},
      {{kSgsm, "SGSM", F::FixedBudget, true, true, 10, "uniform map + tanh-smoothed step (ablation)", {},
        kSdFamily | kMomentum | kSmoothed},
       sdsgsm_variant(kSgsm)},
      // Minimum-norm attacks: the step counts of their papers' shorter settings (DeepFool's 50, DDN's
      // and FMN's 100, C&W's 9 binary steps of 100 Adam steps: its paper runs 10,000).
      {{kDeepfool, "DeepFool", F::MinimumNorm, false, true, 50, "minimum-norm: linearised boundary steps", {}, kL2},
       min_norm(make_deepfool)},
      {{kCw, "C&W", F::MinimumNorm, false, true, 100, "minimum-norm: Carlini-Wagner l2 (Adam, binary search)", {},
        kL2},
       min_norm(make_cw)},
      {{kDdn, "DDN", F::MinimumNorm, false, true, 100, "minimum-norm: decoupled direction and norm (l2)", {}, kL2},
       min_norm(make_ddn)},
      {{kFmn, "FMN", F::MinimumNorm, false, true, 100, "minimum-norm: fast minimum-norm (l2 or l_inf)", {}, kL2},
       min_norm(make_fmn)},
      // APGD and Square: AutoAttack's standard version runs 100 APGD steps and 5000 Square queries.
      {{kApgdCe, "APGD-CE", F::Adaptive, true, false, 100, "APGD on the cross-entropy (l_inf or l2)", {},
        kStrength | kEnsemble | kL2},
       engine(make_apgd_ce)},
      {{kApgdDlr, "APGD-DLR", F::Adaptive, true, false, 100, "APGD on the DLR loss (l_inf or l2)", {}, kStrength | kL2},
       engine(make_apgd_dlr)},
      {{kApgdT, "APGD-T", F::Adaptive, true, false, 100, "APGD on the targeted DLR loss, 9 target classes", {},
        kEnsemble | kL2},
       engine(make_apgd_t)},
      {{kFabT, "FAB-T", F::Adaptive, true, false, 100,
        "targeted FAB: steps onto the linearised boundary, 9 target classes (l_inf or l2)", {}, kEnsemble | kL2},
       engine(make_fab_t)},
      {{kSquare, "Square", F::ScoreBased, true, true, 5000, "gradient-free random search (l_inf; --steps queries)", {},
        kEnsemble},
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

std::vector<std::string> attack_names() { return attack_names(0u); }

std::vector<std::string> attack_names(unsigned traits) {
  std::vector<std::string> names;
  for (const auto& r : rows()) {
    if ((r.info.traits & traits) == traits) names.push_back(r.info.name);
  }
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
