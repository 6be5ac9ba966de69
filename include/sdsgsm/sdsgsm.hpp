// SD-SGSM (Xu, Li, Chang, Dong, "A Spatially Distributed Perturbation Strategy with Smoothed
// Gradient Sign Method for Adversarial Analysis of Image Classification Systems", Entropy 28(2):193,
// 2026), as docs/SD-SGSM.md in the shared project documents specifies it:
//  1. decision-dependent domain identification (DDI): a deterministic zero-out operator over
//     k x k windows with stride s scores how much each window matters to the true class; the
//     per-pixel sensitivity S is the mean score of the windows covering the pixel, clamped at 0,
//     normalised per image to S~ in [0,1] (a flat S gives S~ = 1); the domain D is the top rho
//     fraction of pixels by S~ (ties broken by pixel index);
//  2. spatially adaptive allocation: a weight map M (hard: 1 on D, lambda elsewhere; soft:
//     lambda + (1 - lambda) S~^gamma), budget eps * M and step alpha * M per pixel;
//  3. the smoothed gradient sign: tanh(beta * g / sigma(g)), sigma the per-sample mean |g|.
// All three run inside the common attack engine as its hooks. Variants (the ablation):
//   sdsgsm   = DDI map + tanh;   sd-ifgsm = DDI map + sign;   sgsm = uniform map + tanh.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

/// Options of the decision-dependent domain identification.
struct DdiOptions {
  // Defaults: the tuning sweeps' choice (docs/sweep-refine, docs/sweep-edge).
  // window 0 = half the image's height and width, stride 0 = the window: the same 2 x 2 grid at
  // any size (16 x 16 windows with stride 16 on 32 x 32), so DDI costs 4 forward passes an image.
  SDSGSM_OPTION(int64_t, window, 0)           ///< k: window side in pixels (0: half of each image side)
  SDSGSM_OPTION(int64_t, stride, 0)           ///< s: window stride (<= k, so every pixel is covered; 0: the window)
  SDSGSM_OPTION(std::string, fill, "zero")    ///< zero, mean (each image's channel means) or blur
  SDSGSM_OPTION(std::string, score, "prob")   ///< prob (true-class probability drop), margin or loss
  /// Occluded images per forward call: the memory bound (also when an image has more windows).
  /// 128 keeps the activations in cache (about 1.4x the throughput of 4096 here).
  SDSGSM_OPTION(int64_t, max_batch, 128)
  void validate() const;
  nlohmann::json to_json() const;
  /// The options to_json() wrote (keys it lacks keep their defaults); throws Error on a wrong type.
  static DdiOptions from_json(const nlohmann::json& j);
  /// Every field's declaration (the set "ddi"; --ddi-batch is the JSON key max_batch).
  static const OptionSet<DdiOptions>& option_set();
};

/// SD-SGSM's own options (the engine's are in AttackOptions).
struct SdsgsmOptions {
  SDSGSM_OPTION(DdiOptions, ddi, DdiOptions())
  // Defaults: the tuning sweeps' choice by the rule "ASR >= 99.9% (float and 8-bit), then the
  // highest SSIM" on test images 5000-5999 (docs/sweep-refine, docs/sweep-edge).
  SDSGSM_OPTION(double, rho, 0.05)             ///< fraction of pixels in the domain, (0, 1]
  SDSGSM_OPTION(double, lambda, 0.8)           ///< background weight, [0, 1]
  SDSGSM_OPTION(std::string, map, "hard")      ///< hard or soft
  SDSGSM_OPTION(double, gamma, 1.0)            ///< soft map exponent, > 0
  SDSGSM_OPTION(double, beta, 0.5)             ///< tanh sharpness, > 0 (infinity: sign)
  SDSGSM_OPTION(double, step_factor, 1.5)      ///< default alpha = eps / steps * step_factor
  SDSGSM_OPTION(bool, rescale_step, false)     ///< step map alpha * M / mean(M)
  SDSGSM_OPTION(int64_t, recompute_every, 0)   ///< recompute the map every R iterations (0: once)
  void validate(int64_t height, int64_t width) const;
  nlohmann::json to_json() const;
  /// The options to_json() wrote (keys it lacks keep their defaults); throws Error on a wrong type.
  static SdsgsmOptions from_json(const nlohmann::json& j);
  /// The parts (OptionField::part) of SD-SGSM's options a command may take: DDI's (DdiOptions),
  /// the domain's (rho), the allocation map's (lambda, map, gamma) and the step's.
  enum Part : unsigned { kDdiPart = 1, kDomainPart = 2, kMapPart = 4, kStepPart = 8 };
  /// Every field's declaration but ddi's (the set "sdsgsm"; DdiOptions::option_set has those).
  static const OptionSet<SdsgsmOptions>& option_set();
};

/// Everything that configures an attack: the options every attack may take and each family's own
/// (make_attack reads the part that applies to the attack).
struct AttackSettings {
  AttackOptions attack;
  SdsgsmOptions sd;
  MinNormOptions mn;
};

/// The attacks' option sets, each once, in the order the help, the JSON replay and the Python
/// keywords list them: calls visit(set, pick) for AttackOptions, DdiOptions, SdsgsmOptions and
/// MinNormOptions, where pick(s) is the struct the set fills in `s` (an AttackSettings, or any
/// struct with the members attack, sd and mn).
template <class Visit>
void visit_attack_option_sets(Visit&& visit) {
  visit(AttackOptions::option_set(), [](auto& s) -> auto& { return s.attack; });
  visit(DdiOptions::option_set(), [](auto& s) -> auto& { return s.sd.ddi; });
  visit(SdsgsmOptions::option_set(), [](auto& s) -> auto& { return s.sd; });
  visit(MinNormOptions::option_set(), [](auto& s) -> auto& { return s.mn; });
}

/// make_attack(name, settings.attack, settings.sd, settings.mn).
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackSettings& settings);

/// The k x k windows (clipped at the border; window 0: ceil(H/2) x ceil(W/2)) as an (W, H, W) 0/1
/// float mask.
torch::Tensor ddi_windows(int64_t height, int64_t width, const DdiOptions& options);

/// Raw per-pixel sensitivity S (N x 1 x H x W, clamped at 0) from the zero-out operator; no
/// gradients, all windows of several images per forward call. `logits`: the model's logits on x
/// when the caller has them (saves the unoccluded pass).
torch::Tensor sensitivity_map(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                              const DdiOptions& options, const torch::Tensor& logits = {});

/// S~ = (S - min S) / (max S - min S + 1e-12) per image; a flat S gives S~ = 1.
torch::Tensor normalize_sensitivity(const torch::Tensor& s);

/// True where S is flat (all pixels equal), per image (N, bool).
torch::Tensor flat_maps(const torch::Tensor& s);

/// The domain: the top ceil(rho * H * W) pixels of S~ per image (ties: lower pixel index first);
/// all pixels where S is flat. N x 1 x H x W bool.
torch::Tensor domain_mask(const torch::Tensor& s_norm, double rho, const torch::Tensor& flat = {});

/// The allocation map M in [0,1] (N x 1 x H x W) for the given options.
torch::Tensor allocation_map(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                             const SdsgsmOptions& options);

/// The allocation map from a raw sensitivity map S (hard: 1 on the top-rho domain, lambda
/// elsewhere; soft: lambda + (1 - lambda) S~^gamma; a flat S gives M = 1).
torch::Tensor allocation_from_sensitivity(const torch::Tensor& s, const SdsgsmOptions& options);

/// Sensitivity maps of one model for one set of DDI options, computed once per sample id and
/// reused: a sweep tries many allocation and step settings on the same maps. Only initial maps
/// (of the clean images) are served from it; maps recomputed during the iterations are not.
/// The caller keeps ids, images and model consistent across calls.
class SensitivityCache {
 public:
  explicit SensitivityCache(DdiOptions options) : options_(std::move(options)) {}
  /// S for images `x` (labels `y`, logits when known) with sample ids `ids`, computing only the
  /// uncached ones.
  torch::Tensor get(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& ids,
                    const torch::Tensor& logits = {});
  const DdiOptions& options() const { return options_; }
  double seconds() const { return seconds_; }    ///< time spent computing maps
  int64_t computed() const { return computed_; }  ///< maps computed

 private:
  DdiOptions options_;
  std::unordered_map<int64_t, torch::Tensor> maps_;
  double seconds_ = 0;
  int64_t computed_ = 0;
};

/// tanh(beta * g / sigma(g)), sigma the per-sample mean |g| (guarded against 0).
torch::Tensor smoothed_sign(const torch::Tensor& g, double beta);

/// The SD-SGSM family; `variant` is sdsgsm, sd-ifgsm or sgsm. With `cache` (whose DDI options
/// must equal sd.ddi), initial maps come from it.
std::unique_ptr<Attack> make_sdsgsm_variant(const std::string& variant, const AttackOptions& options,
                                            const SdsgsmOptions& sd,
                                            std::shared_ptr<SensitivityCache> cache = nullptr);

}  // namespace sdsgsm
