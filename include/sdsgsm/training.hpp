// Training zoo networks in C++: random crop (zero padding) and horizontal flip, SGD with momentum
// and weight decay, a cosine or one-cycle schedule, a checkpoint every epoch and resume.
// Optionally adversarial training (l_inf; FGSM-RS, N-FGSM, PGD or plain FGSM) with a guard against
// catastrophic overfitting: PGD robust accuracy on a held-out slice of the training set every
// epoch, rolling back to the best epoch and stopping when it collapses.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/options.hpp"

namespace sdsgsm {

/// Options of `sdsgsm train`, one to one with its flags.
struct TrainOptions {
  SDSGSM_OPTION(std::string, arch, "resnet20")
  SDSGSM_OPTION(int64_t, epochs, 40)
  SDSGSM_OPTION(int64_t, batch_size, 128)
  SDSGSM_OPTION(double, lr, 0.1)  ///< peak learning rate
  SDSGSM_OPTION(double, momentum, 0.9)
  SDSGSM_OPTION(double, weight_decay, 5e-4)
  SDSGSM_OPTION(bool, nesterov, true)
  SDSGSM_OPTION(std::string, schedule, "cosine")  ///< cosine (with warm-up) or onecycle
  SDSGSM_OPTION(double, warmup_epochs, 1.0)        ///< linear warm-up for the cosine schedule
  SDSGSM_OPTION(int64_t, pad, 4)                   ///< random-crop padding in pixels (0: no crop)
  SDSGSM_OPTION(bool, flip, true)                  ///< random horizontal flips
  SDSGSM_OPTION(uint64_t, seed, 0)
  SDSGSM_OPTION(fs::path, out, "")                 ///< final weights
  SDSGSM_OPTION(fs::path, checkpoint_dir, "")      ///< default: <out>.ckpt
  SDSGSM_OPTION(bool, resume, false)
  SDSGSM_OPTION(bool, progress, true)
  SDSGSM_OPTION(std::string, precision, "fp32")   ///< fp32, or bf16 (CPU autocast for the forward pass)
  SDSGSM_OPTION(int64_t, eval_every, 1)            ///< test accuracy every N epochs (0: only at the end)
  /// Adversarial training: none, fgsm-rs (Wong et al. 2020), n-fgsm (de Jorge et al. 2022), pgd
  /// (Madry et al. 2018) or fgsm (no random start; known to overfit catastrophically).
  SDSGSM_OPTION(std::string, adversarial, "none")
  SDSGSM_OPTION(double, adv_eps, 8.0 / 255)         ///< l_inf radius of the training adversarials
  /// Step size; unset: the method's own (fgsm-rs 1.25 eps, n-fgsm and fgsm eps, pgd 2/255).
  SDSGSM_OPTION(std::optional<double>, adv_alpha, std::nullopt)
  SDSGSM_OPTION(int64_t, adv_steps, 10)             ///< PGD steps (pgd only)
  /// Images at the end of the training set held out for the overfitting guard (not trained on
  /// when adversarial training is on); 0 disables the guard.
  SDSGSM_OPTION(int64_t, guard_count, 1000)
  /// The guard stops a run when the robust accuracy falls below (1 - guard_drop) x the best so far
  /// and more than 10 points under it.
  SDSGSM_OPTION(double, guard_drop, 0.5)
  /// Tests only (no flag): replaces the guard's measured robust accuracy, called with the epoch
  /// (1-based) and the measured value.
  std::function<double(int64_t, double)> guard_override;
  /// The method's step size: adv_alpha when set, else the method's default.
  double adversarial_alpha() const;
  /// Throws Error naming the flag of the first invalid value (the declarations' checks), or for
  /// a missing --out or an unknown --arch.
  void validate() const;
  /// The options that define the result (resume refuses to continue under other ones).
  nlohmann::json to_json() const;
  /// Every field's declaration (src/training/train_options.cpp): flag, JSON key, check, help.
  /// `sdsgsm train`'s flags, validate() and to_json() read it: a train option is one field and
  /// one declaration.
  static const OptionSet<TrainOptions>& option_set();
};

struct EpochRecord {
  int64_t epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, test_accuracy = -1, seconds = 0;
  /// PGD accuracy on the guard's held-out images (-1: no guard).
  double robust_accuracy = -1;
  /// The whole epoch: training, the guard and the test evaluation (`seconds`: training only).
  double wall_seconds = 0;
  /// Its line of the history (robust_accuracy only with the guard); from_json reads it back.
  nlohmann::json to_json(bool guard) const;
  static EpochRecord from_json(const nlohmann::json& j);
};

/// What a checkpoint folder's state.json holds, written after every epoch (after the epoch's
/// weight files it points at) and read by a resume.
struct TrainCheckpoint {
  nlohmann::json config;  ///< TrainOptions::to_json and the training images: a resume must match it
  int64_t epochs_done = 0;
  std::vector<EpochRecord> history;
  bool guard = false;                ///< the overfitting guard ran (best_* are set)
  int64_t best_epoch = 0;            ///< the guard's best epoch (best-N.pt)
  double best_robust_accuracy = -1;
  int64_t stopped_epoch = 0;  ///< the guard's stop (0: none)
  std::string stop_reason;

  /// Writes state.json into `dir` atomically.
  void save(const fs::path& dir) const;
  /// The state.json of `dir`; nullopt when it has none.
  static std::optional<TrainCheckpoint> load(const fs::path& dir);
};

struct TrainResult {
  std::vector<EpochRecord> history;
  double test_accuracy = -1;  ///< of the weights written to --out, when a test set was given
  double images_per_second = 0;
  double best_robust_accuracy = -1;  ///< the guard's best (-1: no guard)
  int64_t best_epoch = 0;            ///< the epoch of best_robust_accuracy
  /// The guard's stop: the epoch whose robust accuracy collapsed (0: ran to the end); --out then
  /// holds best_epoch's weights.
  int64_t stopped_epoch = 0;
  std::string stop_reason;
  double seconds = 0;  ///< all epochs' wall_seconds, across resumes
};

/// Trains `options.arch` on `train_set`, evaluating on `test_set` when it has images. Writes a
/// checkpoint every epoch, the final weights to options.out and a JSON log to <out>.json.
TrainResult train_network(const TrainOptions& options, const Dataset& train_set, const Dataset& test_set);

/// The guard's rule: robust accuracy `current` has collapsed from `best` when it is below
/// (1 - drop) x best and more than 0.10 (10 points) under it.
bool guard_collapsed(double best, double current, double drop);

/// An adversarial training batch for `x` (in [0,1]) and labels `y` by options.adversarial, made
/// with `net` in the mode it is in; the noise comes from `gen`. Exposed for tests.
torch::Tensor adversarial_batch(Network& net, const torch::Tensor& x, const torch::Tensor& y,
                                const TrainOptions& options, at::Generator& gen);

/// Learning rate at a fractional epoch for the given schedule (exposed for tests).
double scheduled_lr(const TrainOptions& options, double epoch);

}  // namespace sdsgsm
