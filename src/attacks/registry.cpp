// The attack registry: one row per attack, built by name (label, family, default steps, targeting,
// help line, aliases, what the attack is, the plans it is in) with its factory. Everything that
// lists or classifies attacks reads this table: the CLI's --attack and its help, the Python
// module, the plans, the reports and the contract test (tests/test_contract.cpp).
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

using Factory = std::function<std::unique_ptr<Attack>(const AttackSettings&)>;

struct Row {
  AttackInfo info;
  Factory make;
};

/// An attack that takes only the shared options.
Factory engine(std::unique_ptr<Attack> (*f)(const AttackOptions&)) {
  return [f](const AttackSettings& s) { return f(s.attack); };
}
Factory min_norm(std::unique_ptr<Attack> (*f)(const AttackOptions&, const MinNormOptions&)) {
  return [f](const AttackSettings& s) { return f(s.attack, s.mn); };
}
Factory sdsgsm_variant(const char* variant) {
  return [variant](const AttackSettings& s) { return make_sdsgsm_variant(variant, s.attack, s.sd); };
}

/// A registry row, built by name: row(kFgsm, "FGSM", family).steps(1).targeted()... Whether the
/// attack keeps the budget follows from its family (every family but the minimum-norm one does).
class RowBuilder {
 public:
  RowBuilder(const char* name, const char* label, AttackFamily family) {
    r_.info.name = name;
    r_.info.label = label;
    r_.info.family = family;
    r_.info.bounded = family != AttackFamily::MinimumNorm;
  }
  RowBuilder& steps(int64_t n) { r_.info.default_steps = n; return *this; }
  RowBuilder& targeted() { r_.info.targeted = true; return *this; }
  RowBuilder& help(const char* line) { r_.info.summary = line; return *this; }
  RowBuilder& alias(const char* a) { r_.info.aliases.emplace_back(a); return *this; }
  /// What the attack is (AttackTrait bits).
  RowBuilder& is(unsigned traits) { r_.info.traits |= traits; return *this; }
  /// The plans whose lists it is in (PlanMembership bits).
  RowBuilder& in_plans(unsigned plans) { r_.info.plans |= plans; return *this; }
  RowBuilder& make(Factory f) { r_.make = std::move(f); return *this; }
  operator Row() const { return r_; }  // NOLINT: the table is a list of builders

 private:
  Row r_;
};

RowBuilder row(const char* name, const char* label, AttackFamily family) { return RowBuilder(name, label, family); }

const std::vector<Row>& rows() {
  using F = AttackFamily;
  static const std::vector<Row> table = {
      row(kFgsm, "FGSM", F::FixedBudget).steps(1).targeted().help("one step of eps along sign(grad)")
          .in_plans(kTextbook | kTransfer).make(engine(make_fgsm)),
      row(kIfgsm, "I-FGSM", F::FixedBudget).steps(10).targeted().help("iterated FGSM (BIM)").alias("bim")
          .in_plans(kTextbook | kTransfer).make(engine(make_ifgsm)),
      row(kMifgsm, "MI-FGSM", F::FixedBudget).steps(10).targeted().help("I-FGSM with momentum").is(kMomentum)
          .in_plans(kTextbook | kTransfer).make(engine(make_mifgsm)),
      row(kNifgsm, "NI-FGSM", F::FixedBudget).steps(10).targeted().help("MI-FGSM with the Nesterov look-ahead")
          .is(kMomentum).in_plans(kTextbook | kTransfer).make(engine(make_nifgsm)),
      row(kPgd, "PGD", F::FixedBudget).steps(10).targeted().help("I-FGSM from a random start")
          .in_plans(kTextbook | kTransfer).make(engine(make_pgd)),
      row(kSdsgsm, "SD-SGSM", F::FixedBudget).steps(10).targeted().help("DDI allocation map + tanh-smoothed step")
          .is(kSdFamily | kMomentum | kDdiMap | kSmoothed).in_plans(kTransfer).make(sdsgsm_variant(kSdsgsm)),
      row(kSdIfgsm, "SD-IFGSM", F::FixedBudget).steps(10).targeted().help("DDI allocation map + sign step (ablation)")
          .is(kSdFamily | kMomentum | kDdiMap).make(sdsgsm_variant(kSdIfgsm)),
      row(kSgsm, "SGSM", F::FixedBudget).steps(10).targeted().help("uniform map + tanh-smoothed step (ablation)")
          .is(kSdFamily | kMomentum | kSmoothed).make(sdsgsm_variant(kSgsm)),
      // Minimum-norm attacks: the step counts of their papers' shorter settings (DeepFool's 50, DDN's
      // and FMN's 100, C&W's 9 binary steps of 100 Adam steps: its paper runs 10,000).
      row(kDeepfool, "DeepFool", F::MinimumNorm).steps(50).targeted()
          .help("minimum-norm: linearised boundary steps").is(kL2).make(min_norm(make_deepfool)),
      row(kCw, "C&W", F::MinimumNorm).steps(100).targeted().help("minimum-norm: Carlini-Wagner l2 (Adam, binary search)")
          .is(kL2).make(min_norm(make_cw)),
      row(kDdn, "DDN", F::MinimumNorm).steps(100).targeted().help("minimum-norm: decoupled direction and norm (l2)")
          .is(kL2).make(min_norm(make_ddn)),
      row(kFmn, "FMN", F::MinimumNorm).steps(100).targeted().help("minimum-norm: fast minimum-norm (l2 or l_inf)")
          .is(kL2).make(min_norm(make_fmn)),
      // APGD and Square: AutoAttack's standard version runs 100 APGD steps and 5000 Square queries.
      row(kApgdCe, "APGD-CE", F::Adaptive).steps(100).help("APGD on the cross-entropy (l_inf, l2 or l1)").is(kL2 | kL1)
          .in_plans(kStrength | kEnsemble).make(engine(make_apgd_ce)),
      row(kApgdDlr, "APGD-DLR", F::Adaptive).steps(100).help("APGD on the DLR loss (l_inf, l2 or l1)").is(kL2 | kL1)
          .in_plans(kStrength).make(engine(make_apgd_dlr)),
      row(kApgdT, "APGD-T", F::Adaptive).steps(100).help("APGD on the targeted DLR loss, 9 target classes").is(kL2 | kL1)
          .in_plans(kEnsemble).make(engine(make_apgd_t)),
      row(kFabT, "FAB-T", F::Adaptive).steps(100)
          .help("targeted FAB: steps onto the linearised boundary, 9 target classes (l_inf, l2 or l1)").is(kL2 | kL1)
          .in_plans(kEnsemble).make(engine(make_fab_t)),
      row(kSquare, "Square", F::ScoreBased).steps(5000).targeted()
          .help("gradient-free random search (l_inf, l2 or l1; --steps queries)").is(kL2 | kL1).in_plans(kEnsemble)
          .make(engine(make_square)),
  };
  return table;
}

const Row& find_row(const std::string& name) {
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

const AttackInfo& attack_info(const std::string& name) { return find_row(name).info; }

std::string attack_help() {
  std::string out = "Attacks (--attack), by family:";
  for (AttackFamily family : {AttackFamily::FixedBudget, AttackFamily::MinimumNorm, AttackFamily::Adaptive,
                              AttackFamily::ScoreBased}) {
    out += fmt::format("\n{} ({}):", to_string(family),
                       family == AttackFamily::MinimumNorm ? "unbounded: --eps does not apply, --steps does"
                                                           : "within the budget --eps");
    for (const auto& r : rows()) {
      if (r.info.family != family) continue;
      std::string names = r.info.name;
      for (const auto& a : r.info.aliases) names += " (" + a + ")";
      out += fmt::format("\n  {:<16}{}", names, r.info.summary);
    }
  }
  return out;
}

std::vector<std::string> attack_names() { return attack_names(0u); }

std::vector<std::string> attack_names(unsigned traits) {
  std::vector<std::string> names;
  for (const auto& r : rows()) {
    if (((r.info.traits | r.info.plans) & traits) == traits) names.push_back(r.info.name);
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
  return make_attack(name, AttackSettings{options, sd, mn});
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackSettings& settings) {
  return find_row(name).make(settings);
}

}  // namespace sdsgsm
