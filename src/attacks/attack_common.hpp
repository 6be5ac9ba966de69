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

/// j[key] into `out` when present (the options' from_json: keys to_json wrote; others keep
/// their values); a value of the wrong type is an Error naming the key.
template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& out) {
  if (!j.is_object() || !j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("option '{}' has the wrong type ({})", key, j.at(key).dump()));
  }
}

template <typename T>
void read_key(const nlohmann::json& j, const char* key, std::optional<T>& out) {
  if (!j.is_object() || !j.contains(key)) return;
  T value{};
  read_key(j, key, value);
  out = value;
}

}  // namespace sdsgsm::detail
