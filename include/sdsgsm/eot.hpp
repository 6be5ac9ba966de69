// Expectation over transformation (EOT; Athalye et al., ICML 2018) for APGD, as AutoAttack's rand
// version runs it: each step's input gradient is the mean over N forward and backward passes, so a
// model that draws new noise, crops or flips in every pass is attacked through its expectation.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

/// What eot_gradient computed: the input gradient of the loss averaged over the passes, and the
/// last pass's loss and logits (the ones an attack with EOT judges success by, as AutoAttack does).
struct EotPass {
  torch::Tensor grad, loss, logits;
};

/// The input gradient of sum(loss(logits)) at x averaged over `samples` forward and backward
/// passes of `model` (a randomised model draws anew in each). One sample is the plain gradient,
/// untouched. Throws Error for samples < 1.
EotPass eot_gradient(Classifier& model, const torch::Tensor& x,
                     const std::function<torch::Tensor(const torch::Tensor& logits)>& loss, int64_t samples);

/// apgd-ce, apgd-dlr or apgd-t averaging each step's gradient over `samples` passes (each step
/// then counts `samples` forward and backward passes; its loss and success are the last pass's).
/// samples 1 is make_attack(name, options). Throws Error naming --eot-samples for another attack
/// or samples < 1.
std::unique_ptr<Attack> make_apgd_eot(const std::string& name, const AttackOptions& options, int64_t samples);

}  // namespace sdsgsm
