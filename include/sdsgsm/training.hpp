// Training zoo networks in C++: random crop (zero padding) and horizontal flip, SGD with momentum
// and weight decay, a cosine or one-cycle schedule, a checkpoint every epoch and resume.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"

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
  /// Throws Error for an invalid combination.
  void validate() const;
  /// The options that define the result (resume refuses to continue under other ones).
  nlohmann::json to_json() const;
};

struct EpochRecord {
  int64_t epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, test_accuracy = -1, seconds = 0;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  double test_accuracy = -1;  ///< after the last epoch, when a test set was given
  double images_per_second = 0;
};

/// Trains `options.arch` on `train_set`, evaluating on `test_set` when it has images. Writes a
/// checkpoint every epoch, the final weights to options.out and a JSON log to <out>.json.
TrainResult train_network(const TrainOptions& options, const Dataset& train_set, const Dataset& test_set);

/// Learning rate at a fractional epoch for the given schedule (exposed for tests).
double scheduled_lr(const TrainOptions& options, double epoch);

}  // namespace sdsgsm
