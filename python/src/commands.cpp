// The CLI's other commands from Python, bound thinly (python/sdsgsm/commands.py is the API): data
// sources read batch by batch, robust accuracy (sdsgsm/robust.hpp), the comparison table and the
// HTML report of run folders.
#include <fmt/format.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include "objects.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_curve_report.hpp"
#include "sdsgsm/robust_report.hpp"
#include "sdsgsm/tables.hpp"

namespace py = pybind11;

namespace sdsgsm::python {
namespace {

py::object from_json(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }
nlohmann::json to_json(const py::handle& v) {
  return nlohmann::json::parse(py::module_::import("json").attr("dumps")(v).cast<std::string>());
}

/// An image source held by Python (sdsgsm.DataSource).
struct Source {
  std::shared_ptr<ImageSource> source;
};

Source open_source(const std::string& path, const std::string& split, int64_t offset, int64_t count,
                   const std::string& classes, int64_t resize, int64_t crop) {
  if (split != "test" && split != "train") throw Error(fmt::format("--split must be test or train (got '{}')", split));
  if (resize < 0) throw Error(fmt::format("--resize must be >= 0 (got {})", resize));
  if (crop < 0) throw Error(fmt::format("--crop must be >= 0 (got {})", crop));
  DataOptions options;
  if (!classes.empty()) {
    options.classes = read_class_names(classes);
    options.classes_given = true;
  }
  options.resize = resize;
  options.crop = crop;
  py::gil_scoped_release no_gil;
  return Source{open_image_source(path, split == "train" ? Split::Train : Split::Test, offset, count, options)};
}

/// The options of sdsgsm.robust as the CLI's flags give them: `ensemble` empty is the default
/// (standard, or custom with `attacks`), not asked for; `eot_samples` 0 is the version's default.
RobustOptions robust_options_of(const std::string& norm, const std::vector<std::string>& attacks,
                                const std::string& ensemble, int64_t eot_samples, int64_t steps, int64_t restarts,
                                int64_t queries, uint64_t seed, int64_t check_count, int64_t batch_size, int64_t offset,
                                bool progress) {
  RobustOptions r;
  r.set_norm(parse_norm(norm)).set_steps(steps).set_restarts(restarts).set_queries(queries).set_seed(seed);
  r.set_check_count(check_count).set_batch_size(batch_size).set_first_index(offset).set_progress(progress);
  r.set_eot_samples(eot_samples);
  r.attacks = attacks;
  r.set_ensemble(!ensemble.empty() ? ensemble : attacks.empty() ? "standard" : "custom");
  r.set_ensemble_given(!ensemble.empty() || !attacks.empty());
  return r;
}

/// Robust accuracy of a prepared model (objects.hpp) on a source; the figures as robust.json has
/// them, the per-image outcome as tensors, and the table.
py::dict robust(const py::object& model, const std::string& model_name, const Source& data, double eps,
                const std::string& norm, const std::vector<std::string>& attacks, const std::string& ensemble,
                int64_t eot_samples, int64_t steps, int64_t restarts, int64_t queries, uint64_t seed,
                int64_t check_count, int64_t batch_size, int64_t offset, const std::string& device, bool progress) {
  RobustOptions r = robust_options_of(norm, attacks, ensemble, eot_samples, steps, restarts, queries, seed,
                                      check_count, batch_size, offset, progress);
  r.set_eps(eps).validate();
  r.device = torch::Device(device);
  auto classifier = classifier_of(model, model_name, r.device);
  RobustResult res;
  {
    py::gil_scoped_release no_gil;
    res = robust_accuracy(*classifier, *data.source, r);
  }
  py::dict out;
  out["figures"] = from_json(res.to_json());
  out["options"] = from_json(r.to_json());
  out["card"] = from_json(robust_card({{"model", model_name}, {"version", version_string()}}, r.to_json(), res));
  out["index"] = res.index;
  out["label"] = res.label;
  out["clean_pred"] = res.clean_pred;
  out["fooled_by"] = res.fooled_by;
  out["warnings"] = res.warnings();
  out["csv"] = res.csv();
  out["table"] = res.table(fmt::format("Robust accuracy of {} at {} eps {} on {} images", model_name,
                                       norm_label(r.norm), eps, res.images));
  std::vector<std::string> stages;
  for (const auto& s : res.stages) stages.push_back(s.attack);
  out["stages"] = stages;
  return out;
}

/// Robust accuracy at several radii in one run (sdsgsm/robust_curve.hpp): robust.json's figures
/// (with `curve`), the per-image outcome (fooled_at: the first radius that fooled it), the tables.
py::dict robust_curve_of(const py::object& model, const std::string& model_name, const Source& data,
                         const std::vector<double>& radii, const std::string& norm, const std::vector<std::string>& attacks,
                         const std::string& ensemble, int64_t eot_samples, int64_t steps, int64_t restarts,
                         int64_t queries, uint64_t seed, int64_t check_count, int64_t batch_size, int64_t offset,
                         const std::string& device, bool progress) {
  RobustOptions r = robust_options_of(norm, attacks, ensemble, eot_samples, steps, restarts, queries, seed,
                                      check_count, batch_size, offset, progress);
  if (radii.empty()) throw Error("eps: an empty list");
  for (double e : radii) RobustOptions(r).set_eps(e).validate();
  r.set_eps(radii.back());
  r.device = torch::Device(device);
  auto classifier = classifier_of(model, model_name, r.device);
  RobustCurve curve;
  {
    py::gil_scoped_release no_gil;
    curve = robust_curve(*classifier, *data.source, r, radii);
  }
  nlohmann::json figures = curve.result.to_json();
  figures["curve"] = robust_curve_json(curve);
  py::dict out;
  out["figures"] = from_json(figures);
  nlohmann::json options = r.to_json();
  options["eps_list"] = radii;
  out["options"] = from_json(options);
  out["card"] = from_json(robust_curve_card({{"model", model_name}, {"version", version_string()}}, options, curve));
  out["index"] = curve.result.index;
  out["label"] = curve.result.label;
  out["clean_pred"] = curve.result.clean_pred;
  out["fooled_by"] = curve.result.fooled_by;
  out["fooled_at"] = curve.fooled_at;
  out["warnings"] = curve.result.warnings();
  out["csv"] = curve.result.csv();
  out["curve_csv"] = robust_curve_csv(curve);
  out["table"] = robust_curve_table(curve, r.norm, fmt::format("Robust accuracy of {} against {} eps on {} images", model_name,
                                                               norm_label(r.norm), curve.result.images));
  std::vector<std::string> stages;
  for (const auto& s : curve.result.stages) stages.push_back(s.attack);
  out["stages"] = stages;
  return out;
}

}  // namespace

void register_commands(py::module_& m) {
  py::class_<Source>(m, "Source")
      .def("__len__", [](const Source& s) { return s.source->size(); })
      .def("read_float",
           [](const Source& s, int64_t start, int64_t n) {
             if (start < 0 || n < 0 || start + n > s.source->size()) {
               throw Error(fmt::format("images [{}, {}) are not in this source of {}", start, start + n,
                                       s.source->size()));
             }
             py::gil_scoped_release no_gil;
             return s.source->read_float(start, n);
           })
      .def_property_readonly("classes", [](const Source& s) { return s.source->classes(); })
      .def_property_readonly("image_shape", [](const Source& s) { return s.source->image_shape(); })
      .def_property_readonly("source", [](const Source& s) { return s.source->source(); });
  m.def("open_source", &open_source, py::arg("path"), py::arg("split"), py::arg("offset"), py::arg("count"),
        py::arg("classes"), py::arg("resize"), py::arg("crop"));
  m.def(
      "tensor_source",
      [](const torch::Tensor& x, const torch::Tensor& y) {
        check_device(x, "the data x, y");
        return Source{float_source(x.detach().cpu(), y.detach().cpu(), "the data x, y")};
      },
      py::arg("x"), py::arg("y"));
  m.def("robust", &robust, py::arg("model"), py::arg("model_name"), py::arg("data"), py::arg("eps"), py::arg("norm"),
        py::arg("attacks"), py::arg("ensemble"), py::arg("eot_samples"), py::arg("steps"), py::arg("restarts"), py::arg("queries"), py::arg("seed"),
        py::arg("check_count"), py::arg("batch_size"), py::arg("offset"), py::arg("device"), py::arg("progress"));
  m.def("robust_curve", &robust_curve_of, py::arg("model"), py::arg("model_name"), py::arg("data"), py::arg("eps"),
        py::arg("norm"), py::arg("attacks"), py::arg("ensemble"), py::arg("eot_samples"), py::arg("steps"), py::arg("restarts"), py::arg("queries"), py::arg("seed"),
        py::arg("check_count"), py::arg("batch_size"), py::arg("offset"), py::arg("device"), py::arg("progress"));
  m.def(
      "report_html",
      [](const std::vector<std::string>& inputs, int64_t examples, bool model) {
        ReportOptions o;
        o.examples = examples;
        o.model = model;
        std::vector<fs::path> paths(inputs.begin(), inputs.end());
        py::gil_scoped_release no_gil;
        return report_html(paths, o);
      },
      py::arg("inputs"), py::arg("examples"), py::arg("model"));
  m.def(
      "comparison_markdown",
      [](const py::list& reports) {
        std::vector<nlohmann::json> js;
        for (const auto& r : reports) js.push_back(to_json(r));
        return comparison_markdown(js);
      },
      py::arg("reports"));
}

}  // namespace sdsgsm::python
