// Transfer: adversarials made on one model, evaluated on another (Papernot et al. 2016; MI-FGSM and
// NI-FGSM were built to transfer). A cell of the matrix counts the images the attack fooled on the
// source model and the target model classifies correctly when clean; its transfer ASR is the share
// of them whose adversarial the target misclassifies too. The 8-bit columns do the same with the
// adversarials rounded to 8-bit pixels (over the images whose rounded adversarial fools the source).
// On the diagonal (target = source) a cell is the white-box ASR over the images the model
// classifies correctly.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/options.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

struct TransferCell {
  std::string attack, source, target;
  int64_t counted = 0, fooled = 0;            ///< float adversarials
  int64_t counted_8bit = 0, fooled_8bit = 0;  ///< rounded to 8-bit pixels
  double asr() const { return counted ? static_cast<double>(fooled) / static_cast<double>(counted) : 0; }
  double asr_8bit() const { return counted_8bit ? static_cast<double>(fooled_8bit) / static_cast<double>(counted_8bit) : 0; }
  nlohmann::json to_json() const;
};

/// What `sdsgsm transfer` runs, one to one with its flags: each attack of `attacks` (its defaults
/// and `eps`) made on each model of `models`, evaluated on every model of `models`.
struct TransferOptions {
  std::vector<std::string> attacks = {kIfgsm, kMifgsm, kNifgsm, kSdsgsm};
  std::vector<std::string> models = {"resnet20", "vgg7bn"};
  std::string data = "data/cifar10", split = "test";
  int64_t count = 1000, offset = 0, batch_size = 128;
  std::string eps = "8/255";  ///< as given (the printed title quotes it)
  uint64_t seed = 0;
  std::string out;  ///< where transfer.json and transfer.md go; "": printed only

  /// The declarations of the fields (options.hpp): word, help, check; the command binds them.
  static const OptionSet<TransferOptions>& option_set();
  /// Throws Error naming the flag of the first bad value.
  void validate() const;
};

/// Evaluates the adversarials of `run` (made on model `source`, kept in memory: RunOptions::
/// keep_adversarial) on `target`; `clean` are the run's clean images (N x C x H x W in [0,1]).
TransferCell transfer_cell(const AttackRunResult& run, const torch::Tensor& clean, Classifier& target,
                           const std::string& source, const std::string& target_name, int64_t batch_size,
                           const torch::Device& device = torch::kCPU);

}  // namespace sdsgsm
