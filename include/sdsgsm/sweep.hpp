// Tuning SD-SGSM: a grid sweep over the window k, stride s, domain fraction rho, background
// weight lambda, allocation map, tanh sharpness beta, step factor and momentum decay, on a tuning
// split that must not be the evaluation images. Sensitivity maps depend only on (k, s, fill,
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

struct SweepOptions {
  std::string variant = "sdsgsm";  ///< sdsgsm, sd-ifgsm or sgsm
  AttackOptions attack;            ///< eps, steps, early stop, seed (alpha comes from step_factor)
  SdsgsmOptions base;              ///< fill, score, gamma, DDI batch: what the grid does not vary
  RunOptions run;
  double min_asr = 0.999;
  std::string asr_basis = "both";  ///< float, 8bit or both: which ASR must reach min_asr
};

/// One configuration's result on the tuning images.
struct SweepRow {
  SdsgsmOptions sd;
  double decay = 0;
  int64_t windows = 0;
  nlohmann::json summary;   ///< AttackRunResult::summary()
  double ddi_seconds = 0;   ///< DDI of this window grid for these images (computed once, shared)
  double iteration_seconds = 0;
  bool meets_asr = false;
  bool ddi_within_iterations = false;
  nlohmann::json to_json() const;
};

/// Runs every configuration of the grid on `data`; `on_row` (optional) sees each row as it ends.
std::vector<SweepRow> run_sweep(Classifier& model, const Dataset& data, const SweepGrid& grid,
                                const SweepOptions& options,
                                const std::function<void(const SweepRow&, size_t index, size_t total)>& on_row = {});

/// Index of the row the rule picks (ASR >= min ASR, then the highest SSIM; ties: lower l2, then
/// grid order), optionally among rows whose DDI costs no more than their iterations; -1: none.
int64_t choose_row(const std::vector<SweepRow>& rows, bool within_cost);

/// The sweep's report: the DDI cost per window grid, the chosen settings, and every row sorted
/// by the rule, as markdown.
std::string sweep_markdown(const std::vector<SweepRow>& rows, const std::string& command,
                           const std::string& asr_basis = "both");

/// Whether a summary meets the ASR bound on the given basis (float, 8bit or both).
bool meets_asr(const nlohmann::json& summary, double min_asr, const std::string& basis);

}  // namespace sdsgsm
