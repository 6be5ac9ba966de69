// The model prepared once for the attack objects, and the attack without metrics (objects.hpp).
#include "objects.hpp"

#include <exception>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <pybind11/stl.h>
#include <torch/csrc/jit/python/module_python.h>
#include <torch/csrc/utils/pybind.h>

#include "sdsgsm/models.hpp"

namespace py = pybind11;

namespace sdsgsm::python {

void check_device(const torch::Tensor& x, const std::string& what) {
  const auto device = x.device();
  if (device.is_cpu()) return;
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw Error(fmt::format("{}: the tensors are on {} but this sdsgsm library runs on the CPU only (its LibTorch "
                              "has no CUDA); move them with .cpu()",
                              what, device.str()));
    }
    return;
  }
  throw Error(fmt::format("{}: the tensors are on {}; sdsgsm runs on cpu{}", what, device.str(),
                          torch::cuda::is_available() ? " and cuda" : " only"));
}

std::shared_ptr<Classifier> classifier_of(const py::object& model, const std::string& name,
                                          const torch::Device& device) {
  if (py::isinstance<Prepared>(model)) {
    auto& p = model.cast<Prepared&>();
    if (p.device != device) {
      p.classifier->to(device);
      p.device = device;
    }
    return p.classifier;
  }
  auto script = torch::jit::as_module(model);
  if (!script) {
    throw Error(fmt::format("model must be a torch.jit.ScriptModule (got {})",
                            py::str(py::type::handle_of(model).attr("__name__")).cast<std::string>()));
  }
  // A deep copy: the classifier puts its module in evaluation mode with frozen parameters, and the
  // caller's module stays as it was.
  auto classifier = wrap_script_module(script->clone(), name);
  if (!device.is_cpu()) classifier->to(device);
  return classifier;
}

namespace {

/// The results of consecutive parts of a batch as one.
AttackResult concatenate(std::vector<AttackResult> parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  AttackResult r;
  auto cat = [&](torch::Tensor AttackResult::*field) {
    std::vector<torch::Tensor> ts;
    for (const auto& p : parts) ts.push_back(p.*field);
    r.*field = torch::cat(ts);
  };
  for (auto field : {&AttackResult::adversarial, &AttackResult::clean_pred, &AttackResult::adv_pred,
                     &AttackResult::target, &AttackResult::success, &AttackResult::iterations,
                     &AttackResult::forward_passes, &AttackResult::backward_passes}) {
    cat(field);
  }
  for (const auto& p : parts) {
    r.zero_gradient_samples += p.zero_gradient_samples;
    r.allocation_seconds += p.allocation_seconds;
  }
  return r;
}

/// Rows [begin, end) of x in batches of `batch_size`, on the calling thread.
AttackResult attack_rows(Classifier& model, const Attack& attack, const torch::Tensor& x, const torch::Tensor& y,
                         const torch::Tensor& ids, int64_t begin, int64_t end, int64_t batch_size) {
  std::vector<AttackResult> parts;
  for (int64_t start = begin; start < end; start += batch_size) {
    const int64_t stop = std::min(end, start + batch_size);
    parts.push_back(attack.run(model, x.slice(0, start, stop), y.slice(0, start, stop),
                               ids.slice(0, start, stop).to(x.device())));
  }
  return concatenate(std::move(parts));
}

}  // namespace

AttackResult attack_only(Classifier& model, const Attack& attack, const torch::Tensor& x, const torch::Tensor& y,
                         const torch::Tensor& ids, int64_t batch_size) {
  const int64_t n = x.size(0);
  if (batch_size < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", batch_size));
  // On the CPU, the calling thread's cores split the images between them, each part attacked on one
  // core: about as fast as one batch on all cores on an idle machine, and no threads of one batch
  // waiting for each other when other processes compete for the cores. Every image's adversarial is
  // the one it would get alone (per-sample seeds; the contract test), so the split changes the
  // speed only.
  const int64_t workers = x.device().is_cpu() ? std::min<int64_t>(torch::get_num_threads(), n) : 1;
  if (workers <= 1) return attack_rows(model, attack, x, y, ids, 0, n, batch_size);
  std::vector<AttackResult> parts(static_cast<size_t>(workers));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  std::vector<std::thread> threads;
  const int64_t per = (n + workers - 1) / workers;
  for (int64_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      try {
        torch::set_num_threads(1);
        const int64_t begin = std::min(n, w * per), end = std::min(n, begin + per);
        if (begin < end) parts[w] = attack_rows(model, attack, x, y, ids, begin, end, std::min(batch_size, per));
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  std::vector<AttackResult> done;
  for (auto& p : parts) {
    if (p.adversarial.defined()) done.push_back(std::move(p));
  }
  return concatenate(std::move(done));
}

py::dict result_dict(const AttackResult& r) {
  py::dict out;
  out["adversarial"] = r.adversarial;
  out["success"] = r.success;
  out["iterations"] = r.iterations;
  out["forward_passes"] = r.forward_passes;
  out["backward_passes"] = r.backward_passes;
  out["target"] = r.target;
  out["clean_pred"] = r.clean_pred;
  out["adv_pred"] = r.adv_pred;
  out["zero_gradient_samples"] = r.zero_gradient_samples;
  out["ddi_seconds"] = r.allocation_seconds;
  return out;
}

void register_objects(py::module_& m) {
  py::class_<Prepared, std::shared_ptr<Prepared>>(m, "Prepared");
  m.def(
      "prepare",
      [](const py::object& script, const std::string& name, bool exact) {
        auto module = torch::jit::as_module(script);
        if (!module) throw Error("sdsgsm: prepare takes a torch.jit.ScriptModule");
        auto p = std::make_shared<Prepared>();
        // exact: run as PyTorch runs the module (not frozen, its own layout), so that adversarials
        // equal an eager loop's bit for bit; otherwise the fast path (frozen, channels-last).
        p->classifier = wrap_script_module(module->clone(), name, ModelLoadOptions().set_exact(exact));
        return p;
      },
      py::arg("script"), py::arg("name"), py::arg("exact") = false);
  m.def("devices", [] {
    std::vector<std::string> out{"cpu"};
    if (torch::cuda::is_available()) out.emplace_back("cuda");
    return out;
  });
}

}  // namespace sdsgsm::python
