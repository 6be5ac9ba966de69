// What one attack run over a data set gives: per-sample results (one row per image), the summary
// over the originally-correct samples, and the table of per-sample columns that samples.csv and
// samples.pt are both written from.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace sdsgsm {

/// Figures of the float or of the 8-bit rounded adversarials: the success rate over the scored
/// samples, and the distances over the scored samples the attack fools in that form (`fooled` of
/// them): an image that no longer fools is no adversarial, and its distance is not averaged in.
/// A figure over an empty set (no scored sample, none fooled) is NaN: null in JSON, "n/a" in print.
struct DistortionStats {
  double asr = 0;      ///< fraction of the scored samples the attack succeeded on
  int64_t fooled = 0;  ///< the scored samples it succeeded on: what the distances are over
  double l2_mean = 0, l2_median = 0, linf_mean = 0, linf_median = 0, linf_max = 0, l0_mean = 0, ssim_mean = 0,
         ssim_median = 0, psnr_mean = 0;
  nlohmann::json to_json() const;
};

/// The deterministic figures of a run (no times), typed; JSON only at the edge (to_json, the
/// "summary" of metrics.json).
struct RunSummary {
  std::string attack;
  int64_t images = 0;
  int64_t clean_correct = 0;
  double clean_accuracy = 0;
  int64_t attacked = 0;  ///< the scored samples (see scored_over)
  double robust_accuracy = 0, robust_accuracy_8bit = 0;
  DistortionStats float_stats;    ///< "float"
  DistortionStats rounded_8bit;   ///< "rounded_8bit"
  double iterations_mean = 0;
  /// Model passes per scored sample (forward_passes, backward_passes), the DDI, the 8-bit checks
  /// and the refinement included; passes_mean: the cost, max(forward, backward) per sample (a
  /// gradient step counts one pass; extra backward passes through one forward, DeepFool's per-class
  /// gradients, count one each).
  double forward_passes_mean = 0, backward_passes_mean = 0, passes_mean = 0;
  int64_t zero_gradient_samples = 0;
  std::string scored_over;
  nlohmann::json to_json() const;
};

/// One line when the model classifies few of a run's images correctly (none; under 10%; under 10
/// of a run of 10 images or more): the figures rest on those images alone. "" otherwise.
std::string few_correct_warning(int64_t correct, int64_t images);

/// A figure formatted by `format` (fmt, e.g. "{:.3f}"), or "n/a" when it is not finite (a figure
/// over an empty set: RunSummary's means and medians are NaN there, null in JSON).
std::string figure_or_na(double v, const std::string& format);

/// Per-sample results of one attack over a data set; every tensor has one row per image.
struct AttackRunResult {
  std::string attack;
  nlohmann::json config;
  torch::Tensor index, label, target, clean_pred, adv_pred, success, iterations;
  torch::Tensor forward_passes, backward_passes;  ///< int64: the attack's model passes per sample
  torch::Tensor l2, linf, l0, ssim, psnr;  ///< float adversarials
  torch::Tensor adv_pred_8bit, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit;
  torch::Tensor adversarial;  ///< N x C x H x W float (with RunOptions::keep_adversarial)
  int64_t zero_gradient_samples = 0;
  std::vector<std::string> warnings;  ///< the evaluation checks' findings (sdsgsm/checks.hpp)
  // Wall-clock figures (not part of the deterministic summary).
  double attack_seconds = 0;      ///< in the attack itself (model passes and DDI), summed over ranks
  double allocation_seconds = 0;  ///< of which computing allocation maps (SD-SGSM's DDI)
  double metrics_seconds = 0;     ///< after the attack: the 8-bit rounding, its prediction and the metrics
  double wall_seconds = 0;        ///< the run as a whole (this session, if resumed)
  int64_t images_this_session = 0;

  int64_t size() const { return index.defined() ? index.size(0) : 0; }
  bool targeted() const;
  /// Every figure: accuracy, ASR, distortions (mean/median), SSIM, PSNR; float and 8-bit.
  /// Deterministic: no times.
  RunSummary stats() const;
  /// stats() as JSON.
  nlohmann::json summary() const;
  /// The wall-clock figures, with images/s.
  nlohmann::json timing() const;
  /// summary() and timing() in one object (for tables).
  nlohmann::json report() const;
  /// samples.csv content.
  std::string samples_csv() const;
};

/// One per-sample column of a run. The table of them (sample_columns()) is the one place the
/// per-sample layout is written down: samples.pt, samples.csv, the batches a run keeps while it
/// runs, and metrics.json's "sample_columns" all follow it. Every column is stored as float64
/// (integers exactly) and typed back by `kind` when read.
struct SampleColumn {
  enum class Kind { Int, Bool, Real };
  const char* name;
  Kind kind;
  torch::Tensor AttackRunResult::*member;
};

/// The per-sample columns, in samples.pt order.
const std::vector<SampleColumn>& sample_columns();

/// Their names, in order (metrics.json's "sample_columns").
std::vector<std::string> sample_column_names();

/// The position of a column in the table.
int64_t sample_column_index(torch::Tensor AttackRunResult::*member);

/// A result's per-sample columns as one N x columns float64 tensor (what samples.pt holds).
torch::Tensor sample_rows(const AttackRunResult& r);

/// Sets a result's per-sample columns from N x columns float64 rows, typed back per column.
void set_sample_rows(AttackRunResult& r, const torch::Tensor& rows);

}  // namespace sdsgsm
