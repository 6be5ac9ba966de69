// Tuning every attack of a comparison by ONE rule (the sweep's: ASR >= 99.9% on the float AND
// the 8-bit rounded adversarials of the tuning images, then the highest mean SSIM), on the same
// tuning images, with the same iteration budget, in two regimes:
//   fixed       every attack runs all its steps (the literature's protocol);
//   early_stop  each sample stops at its first success that survives 8-bit rounding (the minimal
//               perturbation question); every attack gets --early-stop-8bit alike.
// Tuned: the step of I-FGSM, MI-FGSM, NI-FGSM and PGD (alpha = eps / steps x step factor) and
// the decay of the momentum ones; the SD-SGSM family on its own parameters, at the default coarse
// DDI grid (k 16 s 16) and at a fine one (k 4 s 2), where the map has 225 windows.
// The result, tuned.json, sits beside a zoo model's weights (models/NAME.tuned.json) and is what
// `reproduce` reads; tuning.md says what every configuration gave.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/sweep.hpp"

namespace sdsgsm {

/// One attack to tune and the grid it is tuned over.
struct TuningItem {
  std::string key;      ///< e.g. "ifgsm", "sdsgsm-fine": the name in tuned.json
  std::string label;    ///< e.g. "SD-SGSM (k 4 s 2)": the name in tables
  std::string variant;  ///< the sweep variant it runs
  SweepGrid grid;
};

/// The attacks tuned for `reproduce` and their grids, in table order.
std::vector<TuningItem> tuning_plan();

/// The two regimes, in table order: "fixed" and "early_stop".
std::vector<std::string> tuning_regimes();

struct TuningOptions {
  AttackOptions attack;  ///< eps, steps, seed (alpha, decay and early stop are set per item and regime)
  RunOptions run;
  double min_asr = 0.999;
  std::string asr_basis = "both";
  std::vector<std::string> only;  ///< keys of the plan to tune (empty: all)
  std::vector<std::string> regimes = tuning_regimes();
};

/// Runs the plan on `data` (the tuning images). Returns {"regimes": {regime: {key: chosen row or
/// null}}, "rows": {regime: {key: [every row]}}, "plan": ...}; `on_row` sees each row as it ends.
nlohmann::json run_tuning(Classifier& model, const Dataset& data, const TuningOptions& options,
                          const std::function<void(const std::string& regime, const TuningItem& item,
                                                   const SweepRow& row, size_t index, size_t total)>& on_row = {});

/// The attack a chosen row of tuned.json describes, at the eps and steps of `base`.
std::unique_ptr<Attack> make_tuned_attack(const nlohmann::json& row, const AttackOptions& base);

/// The tuned.json beside a zoo model's weights (models/NAME.tuned.json), or "" when the model is
/// not a zoo name or has none.
fs::path find_tuned_settings(const std::string& model);

}  // namespace sdsgsm
