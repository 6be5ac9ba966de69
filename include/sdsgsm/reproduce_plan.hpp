// The plan of `sdsgsm reproduce` (src/orchestration/reproduce_plan.cpp): which attacks run on which
// model, in which regime, with which settings; the tuned settings read and checked; what a resume
// must match. Nothing here runs an attack: the entries' factories are called by the execute step
// (reproduce.cpp).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/reproduce.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

/// One attack run of the comparison, built by its setters:
///   ReproduceEntry().set_regime(kFixedRegime).set_group("textbook").set_label("I-FGSM")...
struct ReproduceEntry {
  SDSGSM_OPTION(Regime, regime, kFixedRegime)
  /// "textbook", "tuned", "SD-SGSM family, tuned", "shipped defaults", "APGD", "minimum norm"
  SDSGSM_OPTION(std::string, group, "")
  SDSGSM_OPTION(std::string, label, "")
  SDSGSM_OPTION(AttackAtEps, make, nullptr)   ///< the attack at a budget
  SDSGSM_OPTION(int64_t, count, 0)            ///< images (from the first); 0: all
  SDSGSM_OPTION(bool, eps_curve, false)       ///< also run at every eps of the eps list
  SDSGSM_OPTION(std::string, attack, "")      ///< its registry name (--min-norm's for those)
  /// Stable within a model: REGIME/KIND/KEY ("fixed/tuned/sdsgsm"), never a display label.
  SDSGSM_OPTION(std::string, id, "")
};

/// The settings every entry starts from.
struct AttackPlan {
  AttackOptions base;  ///< eps and steps of the comparison
  SdsgsmOptions sd;    ///< the shipped-defaults row
  int64_t min_norm_count = 0, min_norm_steps = 100;
  std::vector<std::string> min_norm;
};

/// The DDI maps shared by the runs of one model, by DDI grid.
using SensitivityCaches = std::map<std::string, std::shared_ptr<SensitivityCache>>;

/// The plan of a reproduce run: the attacks, the models, their tuned settings, and what a resume
/// must match (the fingerprint).
struct ReproducePlan {
  AttackPlan attacks;
  std::vector<double> eps_list;
  std::vector<double> robust_eps;  ///< the radii of the ensemble's curve (robust_radii)
  nlohmann::json fingerprint;
  std::map<std::string, nlohmann::json> tuned;  ///< per compared model: its tuned.json; null: not tuned
  std::vector<std::string> every;                ///< the compared models, then the defended ones
  int64_t strength_n = 0, transfer_n = 0;        ///< images of the strength table and the transfer matrices
};

/// Validates `o`, reads the tuned settings of each model and builds the plan (throws Error naming
/// the flag of the first bad value, or the tuned file that is not one).
ReproducePlan plan_reproduce(const ReproduceOptions& o);

/// The radii of the defended models' robust-accuracy curve: --robust-eps, or eps/2 and eps when it
/// is empty. Throws Error naming --robust-eps when they are not strictly increasing or the last one
/// is not --eps (the radius of every other table).
std::vector<double> robust_radii(const ReproduceOptions& o);

/// The comparison's entries for one model: per regime (fixed, early stop) the textbook baselines
/// (early stop leaves out one-step attacks), SD-SGSM on its defaults, then the tuned rows of
/// `tuned` (its tuned.json; null: none); then the minimum-norm attacks. `caches` share each DDI
/// grid's maps between the entries.
std::vector<ReproduceEntry> comparison_entries(const AttackPlan& p, const nlohmann::json& tuned,
                                               SensitivityCaches& caches);

/// The strength table's entries for a defended model on `count` images: the textbook baselines and
/// the SD-SGSM family on their defaults (fixed iterations), then APGD-CE and APGD-DLR on theirs.
std::vector<ReproduceEntry> strength_entries(const AttackPlan& p, int64_t count, SensitivityCaches& caches);

/// A minimum-norm attack by its name in --min-norm: deepfool, cw, ddn on their default norm, or
/// NAME-l2 / NAME-linf (fmn-l2); throws Error naming the known ones.
std::unique_ptr<Attack> make_min_norm(const std::string& spec, const AttackOptions& base);

}  // namespace sdsgsm
