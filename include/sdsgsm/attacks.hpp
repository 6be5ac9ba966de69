// Gradient attacks on image classifiers, all run by ONE iterative engine.
//
// An attack is a configuration of the engine's hooks (Foolbox's design): the start (clean or a
// seeded uniform point in the budget), the per-pixel allocation map M (uniform for the classic
// attacks), the momentum rule (none, MI-FGSM, or MI with the Nesterov look-ahead), and the step
// direction (sign, or SD-SGSM's tanh). The engine computes the gradient of the loss with respect
// to the input (the model is in eval mode with frozen parameters), steps by alpha * M * direction,
// and projects onto [x - eps * M, x + eps * M] and then [0,1].
//
// Tensor shapes: images N x C x H x W float in [0,1]; labels N int64; maps N x 1 x H x W.
// The loss is per-sample cross-entropy SUMMED over the batch, so no sample's result depends on
// the batch it is in; per-sample randomness is seeded by (seed, sample id) for the same reason.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/models.hpp"

namespace sdsgsm {

/// The step size alpha of an attack that sets none (the l_inf baselines): 2/255.
inline constexpr double kDefaultAlpha = 2.0 / 255;

/// How a targeted attack picks its target label. None: untargeted.
enum class TargetMode { None, Given, Random, LeastLikely };

TargetMode parse_target_mode(const std::string& text);
std::string to_string(TargetMode mode);

/// Every attack parameter, one to one with the command-line flags (chained setters with named
/// defaults, as LibTorch's options objects). Defaults are those of the field's most used library:
/// eps 8/255, alpha 2/255, 10 steps, momentum decay 1.0.
struct AttackOptions {
#define SDSGSM_ATTACK_ARG(T, name, def) \
  T name = def;                         \
  AttackOptions& set_##name(T v) { name = std::move(v); return *this; }
  SDSGSM_ATTACK_ARG(double, eps, 8.0 / 255)     ///< l_inf budget on the [0,1] scale
  /// Step size; unset: the attack's default (2/255 for the baselines, eps / steps * step factor
  /// for the SD-SGSM family). FGSM steps by eps.
  SDSGSM_ATTACK_ARG(std::optional<double>, alpha, std::nullopt)
  SDSGSM_ATTACK_ARG(int64_t, steps, 10)         ///< iterations (FGSM: 1)
  /// Momentum decay mu; unset: the attack's default (1.0 for MI-FGSM and NI-FGSM, 0 for the
  /// SD-SGSM family, where 0 turns momentum off).
  SDSGSM_ATTACK_ARG(std::optional<double>, decay, std::nullopt)
  /// Freeze samples as soon as they succeed; unset: the attack's default (off for the classic
  /// attacks, as the literature defines them; on for the SD-SGSM family).
  SDSGSM_ATTACK_ARG(std::optional<bool>, early_stop, std::nullopt)
  /// With early stop: freeze a sample only when its adversarial rounded to 8-bit pixels succeeds
  /// too (one extra forward pass of the samples about to leave), so a saved PNG keeps the
  /// success. Needs early stop.
  SDSGSM_ATTACK_ARG(bool, early_stop_8bit, false)
  SDSGSM_ATTACK_ARG(bool, random_start, false)  ///< uniform start in the budget (PGD: on)
  SDSGSM_ATTACK_ARG(uint64_t, seed, 0)
  SDSGSM_ATTACK_ARG(TargetMode, targeted, TargetMode::None)
  SDSGSM_ATTACK_ARG(int64_t, target_label, -1)  ///< for TargetMode::Given
#undef SDSGSM_ATTACK_ARG
  /// Throws Error naming the flag of the first invalid value.
  void validate() const;
  /// alpha, or `fallback` when unset.
  double alpha_or(double fallback) const { return alpha.value_or(fallback); }
  nlohmann::json to_json() const;
};

/// What one attack call returns; all tensors have N rows.
struct AttackResult {
  torch::Tensor adversarial;  ///< N x C x H x W, float in [0,1]
  torch::Tensor clean_pred;   ///< int64: prediction on the clean images
  torch::Tensor adv_pred;     ///< int64: prediction on the adversarial images
  torch::Tensor target;       ///< int64: the target label (targeted) or the true label
  torch::Tensor success;      ///< bool: misclassified (untargeted) / target hit (targeted)
  torch::Tensor iterations;   ///< int64: gradient steps spent on each sample
  int64_t zero_gradient_samples = 0;  ///< samples whose input gradient was all zeros at step 1
  double allocation_seconds = 0;      ///< time spent computing allocation maps (SD-SGSM's DDI)
};

/// What the allocation hook is asked for: maps for these images.
struct AllocationInput {
  const torch::Tensor& x;    ///< the images (clean, or the current iterate when recomputed), N x C x H x W
  const torch::Tensor& y;    ///< their true labels
  const torch::Tensor& ids;  ///< their sample ids (data-set indices), for caches
  int64_t iteration = 0;     ///< 0: the initial map of the clean images; t: recomputed before step t
  torch::Tensor logits = {};  ///< the model's logits on x when the engine has them (iteration 0)
};

/// The engine's hooks. An attack is a name, its options and these.
struct AttackHooks {
  /// Per-pixel weight map M in [0,1] (N x 1 x H x W) for the images given; empty function:
  /// uniform M = 1. Computed before the first step for the samples that take one (with early
  /// stop, samples already misclassified are frozen first and get no map).
  std::function<torch::Tensor(Classifier&, const AllocationInput&)> allocation;
  /// Checks the input against the attack's own parameters before anything runs (e.g. SD-SGSM's
  /// window must fit the image); throws Error.
  std::function<void(const torch::Tensor& x)> check_input;
  /// Step direction from the (momentum-accumulated) gradient; default sign.
  std::function<torch::Tensor(const torch::Tensor& g)> direction;
  bool momentum = false;  ///< accumulate g = decay * g + grad / mean|grad| (MI-FGSM)
  bool nesterov = false;  ///< take the gradient at x + alpha * decay * g (NI-FGSM)
  /// Step map alpha * M / mean(M) (per sample) instead of alpha * M: moves step size from the
  /// background to the domain; the budget stays eps * M.
  bool rescale_step = false;
  /// Recompute the allocation map from the current iterate every R iterations (0: never).
  int64_t reallocate_every = 0;
  /// The attack's own parameters (e.g. SD-SGSM's rho, lambda, beta), reported with its config.
  nlohmann::json parameters = nlohmann::json::object();
};

class Attack {
 public:
  /// Unset alpha / decay take the engine's defaults (kDefaultAlpha; 1.0 with momentum, else 0).
  Attack(std::string name, AttackOptions options, AttackHooks hooks);

  /// Attacks a batch. `sample_ids` (int64, N) seed the per-sample randomness (random start,
  /// random targets); by default 0..N-1. The input tensors are not modified.
  AttackResult run(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                   const torch::Tensor& sample_ids = {}) const;

  const std::string& name() const { return name_; }
  const AttackOptions& options() const { return options_; }
  /// Name, options and hooks as JSON, for reports.
  nlohmann::json config() const;

 private:
  std::string name_;
  AttackOptions options_;
  AttackHooks hooks_;
};

struct SdsgsmOptions;

/// Names `make_attack` knows: fgsm, ifgsm (alias bim), mifgsm, nifgsm, pgd, and the SD-SGSM
/// family sdsgsm, sd-ifgsm, sgsm.
std::vector<std::string> attack_names();

/// Builds a named attack; throws Error for an unknown name or invalid options. `sd` configures
/// the SD-SGSM family (defaults when omitted).
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options);
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd);

// One factory per attack, each in its own file (src/attacks/<name>.cpp).
std::unique_ptr<Attack> make_fgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_ifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_mifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_nifgsm(const AttackOptions& options);
std::unique_ptr<Attack> make_pgd(const AttackOptions& options);

/// sign(g), the classic direction.
torch::Tensor sign_direction(const torch::Tensor& g);

}  // namespace sdsgsm
