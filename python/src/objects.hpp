// The model prepared once for the attack objects of python/sdsgsm/attacks.py, and the attack
// without the runner's metrics (Attack::run batch by batch), used by module.cpp's `attack`.
#pragma once

#include <memory>
#include <string>

#include <pybind11/pybind11.h>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"

namespace sdsgsm::python {

/// A model from Python prepared for attacks: a deep copy of a ScriptModule, in evaluation mode,
/// frozen on its first forward pass and kept between calls (sdsgsm/attacks.py makes a new one when
/// the module's weights change).
struct Prepared {
  std::shared_ptr<Classifier> classifier;
  torch::Device device = torch::kCPU;
};

/// The classifier a model from Python runs as on `device`: a Prepared's (moved there once), or a
/// fresh deep copy of a torch.jit.ScriptModule; anything else raises Error.
std::shared_ptr<Classifier> classifier_of(const pybind11::object& model, const std::string& name,
                                          const torch::Device& device);

/// Refuses tensors on a device this build cannot run on, with a one-line Error.
void check_device(const torch::Tensor& x, const std::string& what);

/// Attack::run over x in batches of `batch_size` (sample ids `ids`, int64 N on the CPU): the
/// adversarials and the per-sample outcome, on x's device, without the metrics or the checks.
AttackResult attack_only(Classifier& model, const Attack& attack, const torch::Tensor& x, const torch::Tensor& y,
                         const torch::Tensor& ids, int64_t batch_size);

/// An AttackResult as a dict of its tensors (adversarial, success, iterations, ...).
pybind11::dict result_dict(const AttackResult& r);

/// sdsgsm._sdsgsm.Prepared, prepare() and devices().
void register_objects(pybind11::module_& m);

/// sdsgsm._sdsgsm.Source, open_source, tensor_source, robust, report_html, comparison_markdown
/// (commands.cpp).
void register_commands(pybind11::module_& m);

}  // namespace sdsgsm::python
