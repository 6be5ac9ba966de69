// Running an attack over a data set: batches, per-sample results and metrics (float and 8-bit
// rounded), the summary over the originally-correct samples, and the output folder.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"

namespace sdsgsm {

struct RunOptions {
  int64_t batch_size = 128;  ///< activations of 128 CIFAR images stay in cache: ~1.7x the gradient passes of 256 here
  bool progress = true;
  int64_t first_index = 0;  ///< data-set index of the first image (for ids and reports)
  bool keep_adversarial = true;
};

/// Per-sample results of one attack over a data set; every tensor has one row per image.
struct AttackRunResult {
  std::string attack;
  nlohmann::json config;
  torch::Tensor index, label, target, clean_pred, adv_pred, success, iterations;
  torch::Tensor l2, linf, l0, ssim, psnr;                    ///< float adversarials
  torch::Tensor adv_pred_8bit, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit;
  torch::Tensor adversarial;  ///< N x C x H x W float (when kept)
  int64_t zero_gradient_samples = 0;
  double attack_seconds = 0;  ///< time in the attack itself (model passes and DDI included)
  double allocation_seconds = 0;  ///< of which computing allocation maps (SD-SGSM's DDI)
  double total_seconds = 0;   ///< attack plus metrics

  int64_t size() const { return index.defined() ? index.size(0) : 0; }
  bool targeted() const;
  /// Every figure: accuracy, ASR, distortions (mean/median), SSIM, PSNR, speed; float and 8-bit.
  nlohmann::json summary() const;
  /// samples.csv content.
  std::string samples_csv() const;
};

/// Attacks every image of `data` (already sliced to the wanted range) in batches.
AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options);

/// Writes metrics.json, samples.csv, adversarial.pt (torch.load-able) and, when `sheet_clean`
/// holds the first clean images, sheet.png (clean | adversarial | perturbation amplified) into
/// `dir`, via a temporary folder renamed at the end, so no partial output folder is ever left
/// behind. An existing `dir` is replaced only when it holds an earlier sdsgsm output.
void write_attack_outputs(const AttackRunResult& result, const nlohmann::json& run_info, const fs::path& dir,
                          const torch::Tensor& sheet_clean = {});

/// Checks up front that `dir` can be created or replaced; throws Error otherwise.
void check_output_dir(const fs::path& dir);

/// Writes an output folder all or nothing: checks `dir`, lets `fill` write into a fresh
/// temporary folder beside it, then renames that onto `dir` (replacing an earlier sdsgsm output).
/// If `fill` throws, the temporary folder is removed and `dir` is left as it was.
void write_output_dir(const fs::path& dir, const std::function<void(const fs::path& tmp)>& fill);

/// Writes a PNG sheet: one row per image, columns clean | adversarial | |delta| amplified.
void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale = 4);

/// A markdown table comparing several runs (ASR, l2, l_inf, SSIM, PSNR, images/s; float and 8-bit).
std::string comparison_markdown(const std::vector<nlohmann::json>& summaries);

}  // namespace sdsgsm
