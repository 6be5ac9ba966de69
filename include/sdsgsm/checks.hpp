// Evaluation checks, in the spirit of AutoAttack's: findings that make a robustness figure
// unreliable. An error where the results would be meaningless, a warning (which says what to do)
// otherwise; warnings go to stderr and to the `warnings` list of metrics.json.
#pragma once

#include <string>
#include <vector>

#include "sdsgsm/models.hpp"

namespace sdsgsm {

/// Checks a model on a few images in [0,1] (N x C x H x W, on the model's device) with their labels
/// before it is attacked or evaluated.
/// Errors (thrown as Error, one line naming the model): NaN or infinite logits; a class count
/// other than the data's (`num_classes`; <= 0: only the labels are checked); with `gradients`, an
/// output that does not depend on the input, and NaN or infinite input gradients.
/// Warnings (returned): outputs that look like probabilities (softmax) rather than logits; outputs
/// that differ between two passes on the same images (dropout left on, a randomised defence);
/// more threads than cores.
std::vector<std::string> check_model(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                                     int64_t num_classes, bool gradients = true);

/// The warning for samples whose loss gradient was all zero at the first step (empty when none).
std::string zero_gradient_warning(const std::string& attack, int64_t samples, int64_t total);

}  // namespace sdsgsm
