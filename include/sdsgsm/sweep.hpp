// Tuning an attack: a grid sweep over the window k, stride s, domain fraction rho, background
// weight lambda, allocation map, tanh sharpness beta, step factor and momentum decay, on a tuning
// split that must not be the evaluation images. The baselines (ifgsm, mifgsm, nifgsm, pgd) are
// tuned by the same rule over their step (alpha = eps / steps x step factor, as SD-SGSM's) and,
// with momentum, the decay; the window, rho, lambda, map and beta lists do not apply to them.
// Sensitivity maps depend only on (k, s, fill,
// score), so each window grid's DDI runs once and serves every other setting (SensitivityCache).
//
// Selection rule: ASR >= 99.9% on the tuning images, then the highest mean SSIM. By default the
// ASR bound holds for the float adversarials AND after rounding them to 8-bit pixels (a saved
// image that no longer fools the model is no adversarial example); --asr-basis float|8bit|both.
// The same rule is also applied within the configurations whose DDI costs no more than their
// attack iterations, and both choices are reported.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

/// The values to try for each parameter (the grid is their product; pairs with s > k are
/// skipped; soft maps, which have no domain, are tried with the first rho only). An empty
/// stride list means s = k.
struct SweepGrid {
  std::vector<int64_t> window{4, 8, 16};
  /// Strides: a positive value is a stride in pixels; a negative value -d means k / d (so -1 is
  /// s = k and -2 is s = k / 2, written "k" and "k/2" on the command line).
  std::vector<int64_t> stride;
  std::vector<double> rho{0.25};
  std::vector<double> lambda{0.5};
  std::vector<std::string> map{"hard"};
  std::vector<double> beta{1.0};
  std::vector<double> step_factor{2.5};
  std::vector<double> decay{0.0};
  /// Every configuration, in a fixed order (window grids outermost), from `base`.
  std::vector<SdsgsmOptions> expand(const SdsgsmOptions& base) const;
  nlohmann::json to_json() const;
};

/// The attacks a sweep can tune: the SD-SGSM family and the iterative baselines.
std::vector<std::string> sweep_variants();
/// Whether `variant` is of the SD-SGSM family (sdsgsm, sd-ifgsm, sgsm).
bool is_sdsgsm_family(const std::string& variant);

struct SweepOptions {
  std::string variant = kSdsgsm;  ///< one of sweep_variants()
  /// eps, steps, early stop (unset: the attack's default), seed; alpha comes from step_factor
  AttackOptions attack;
  SdsgsmOptions base;              ///< fill, score, gamma, DDI batch: what the grid does not vary
  RunOptions run;
  double min_asr = 0.999;
  std::string asr_basis = "both";  ///< float, 8bit or both: which ASR must reach min_asr
};

/// One configuration's result on the tuning images.
struct SweepRow {
  std::string variant = kSdsgsm;
  SdsgsmOptions sd;  ///< for the baselines only its step_factor applies
  double alpha = 0;  ///< eps / steps x sd.step_factor
  double decay = 0;
  bool early_stop = true;
  bool early_stop_8bit = false;
  int64_t windows = 0;
  nlohmann::json summary;   ///< AttackRunResult::summary()
  double ddi_seconds = 0;   ///< DDI of this window grid for these images (computed once, shared)
  double iteration_seconds = 0;
  bool meets_asr = false;
  bool ddi_within_iterations = false;
  nlohmann::json to_json() const;
  /// The settings to_json() wrote (not the summary or times); throws Error on a malformed row.
  static SweepRow from_json(const nlohmann::json& j);
  /// The attack this row ran, built again at the eps and steps of `base` (e.g. to run it on other
  /// images): the step is eps / steps x step factor for every variant, so it follows the budget.
  /// With `cache` (for the DDI variants, of sd.ddi), initial maps come from it.
  std::unique_ptr<Attack> make(const AttackOptions& base, std::shared_ptr<SensitivityCache> cache = nullptr) const;
  /// Its settings in words, e.g. "alpha 0.80/255 (step factor 1), decay 1".
  std::string describe() const;
};

/// Runs every configuration of the grid on `data`; `on_row` (optional) sees each row as it ends.
std::vector<SweepRow> run_sweep(Classifier& model, const Dataset& data, const SweepGrid& grid,
                                const SweepOptions& options,
                                const std::function<void(const SweepRow&, size_t index, size_t total)>& on_row = {});

/// Index of the row the rule picks (ASR >= min ASR, then the highest SSIM; ties: lower l2, then
/// grid order), optionally among rows whose DDI costs no more than their iterations; -1: none.
int64_t choose_row(const std::vector<SweepRow>& rows, bool within_cost);

/// The rows' indices in the rule's order: those meeting the ASR bound first, then by SSIM
/// (highest first; ties: lower l2, then grid order).
std::vector<size_t> rule_order(const std::vector<SweepRow>& rows);

/// Whether a summary meets the ASR bound on the given basis (float, 8bit or both).
bool meets_asr(const nlohmann::json& summary, double min_asr, const std::string& basis);

}  // namespace sdsgsm
