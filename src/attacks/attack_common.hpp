// Pieces both attack families share (private to src/attacks; see include/sdsgsm/attacks.hpp).
#pragma once

#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"

namespace sdsgsm::detail {

/// A generator for one sample, independent of the batch it is attacked in.
at::Generator sample_generator(uint64_t seed, int64_t id, uint64_t stream);

/// Throws Error unless x is N x C x H x W and y a vector of N labels.
void check_attack_input(const torch::Tensor& x, const torch::Tensor& y);

/// The target of each sample: its label (untargeted), the given label, a random other label
/// seeded by (seed, sample id), or the least likely class of the clean logits.
torch::Tensor attack_targets(const AttackOptions& o, const torch::Tensor& y, const torch::Tensor& clean_logits,
                             const torch::Tensor& ids_cpu);

/// The clean pass both attack families start with: the clean logits (returned, without
/// gradient), and r.clean_pred and r.target (attack_targets) filled in.
torch::Tensor clean_pass(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const AttackOptions& o,
                         const torch::Tensor& ids_cpu, AttackResult& r);

/// The point of {||d||_1 <= eps} + x0 intersected with [0,1] closest to z in l2, per image (APGD
/// and Square in l1; AutoAttack's L1_projection).
torch::Tensor project_l1_box(const torch::Tensor& z, const torch::Tensor& x0, double eps);

}  // namespace sdsgsm::detail
