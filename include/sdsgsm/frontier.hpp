// The frontier of the saved adversarial: for each attack at several budgets, the median l2 (and
// SSIM) of its 8-bit adversarials over the images it fools once rounded, against the model passes
// it spent per image (forward passes, every DDI window, 8-bit check and refinement pass counted;
// a gradient step is one forward and one backward pass). `reproduce` writes it per model.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

/// One point of the frontier: an attack at one budget, over the same images.
struct FrontierPoint {
  std::string attack;   ///< the registry name
  std::string label;    ///< "SD-SGSM + refine 20", "DDN 50 steps", ...
  std::string setting;  ///< what was set, for the table ("initial norm 0.5 (tuned)", ...)
  int64_t images = 0, scored = 0;  ///< images run; of them, classified correctly (what the figures are over)
  double passes = 0;  ///< the cost: RunSummary::passes_mean (max of the two below, per image)
  double forward_passes = 0, backward_passes = 0;  ///< means per scored image
  double asr_8bit = 0;        ///< of the scored images
  int64_t fooled_8bit = 0;    ///< scored images whose 8-bit adversarial fools
  double l2_8bit_median = 0, l2_8bit_mean = 0, ssim_8bit_median = 0;  ///< over those
  nlohmann::json to_json() const;
};

/// What the frontier runs: the first `count` images of `data` (offset `offset`); DDN's initial norm
/// is tuned per step budget on `tuning_count` images from `tuning_offset` by the minimum-norm
/// rule (8-bit ASR >= 99.9%, then the smallest median 8-bit l2).
struct FrontierOptions {
  std::string data = "data/cifar10";
  int64_t offset = 0, count = 100;
  int64_t tuning_offset = 5000, tuning_count = 50;
  double eps = 8.0 / 255;   ///< the budget of the bounded attacks
  SdsgsmOptions sd;         ///< SD-SGSM's settings (its shipped defaults)
  std::vector<int64_t> sdsgsm_refine = {0, 4, 10, 20, 40};
  std::vector<int64_t> ifgsm_refine = {0, 20};
  std::vector<int64_t> ddn_steps = {5, 10, 20, 50, 100};
  std::vector<double> ddn_initial_norms = {0.25, 0.5, 1.0};  ///< tried for budgets below 100 steps
  std::vector<std::pair<int64_t, int64_t>> cw_budgets = {{1, 10}, {5, 10}, {5, 20}};  ///< binary steps x steps
  std::vector<int64_t> fmn_steps = {10, 100};
  RunOptions run;
};

/// The attacks of the frontier, each run on the same images; `tuned_ifgsm_alpha` (> 0) is I-FGSM's
/// step tuned for the early-stop regime (tuned.json), without which I-FGSM runs at 2/255.
std::vector<FrontierPoint> run_frontier(Classifier& model, const FrontierOptions& o, double tuned_ifgsm_alpha,
                                        const std::function<void(const FrontierPoint&)>& on_point = {});

}  // namespace sdsgsm
