// sdsgsm._sdsgsm: the C++ side of the Python module (python/sdsgsm/__init__.py is the API users
// call). Tensors and TorchScript modules come over through torch's own pybind11 casters, so the
// library runs on the very tensors and module Python holds, in the same LibTorch.
//
// An attack from Python runs as the CLI's `attack` does (sdsgsm/runner.hpp: the evaluation checks,
// batches, per-sample seeds from the data-set index, metrics float and 8-bit), on the images given
// instead of a data set: the adversarials are the CLI's for the same model, images and options.
#include <functional>
#include <map>

#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/jit/python/module_python.h>
#include <torch/csrc/utils/pybind.h>

#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/transfer.hpp"
#include "objects.hpp"

namespace py = pybind11;

namespace sdsgsm::python {
namespace {

/// Everything one attack call sets.
struct Settings {
  AttackOptions attack;
  SdsgsmOptions sd;
  MinNormOptions mn;
  RunOptions run;
  int threads = 0;  ///< 0: all cores
};

std::string type_name(const py::handle& v) { return py::str(py::type::handle_of(v).attr("__name__")); }

// Option values: what a Python user would pass, checked with errors naming the option. Numbers
// that the CLI takes as text (eps, alpha, decay) also take its fractions, "8/255".
// Integers are whatever has __index__ (numpy's too), numbers whatever has __float__; True and
// False are neither here.
double as_number(const py::handle& v, const std::string& name) {
  if (py::isinstance<py::str>(v)) return parse_number(v.cast<std::string>(), "--" + name);
  if (py::isinstance<py::bool_>(v) || !(PyIndex_Check(v.ptr()) || py::hasattr(v, "__float__"))) {
    throw Error(fmt::format("option {} must be a number (got {})", name, type_name(v)));
  }
  return py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>();
}
int64_t as_int(const py::handle& v, const std::string& name) {
  if (py::isinstance<py::bool_>(v) || !PyIndex_Check(v.ptr())) {
    throw Error(fmt::format("option {} must be an integer (got {})", name, type_name(v)));
  }
  return py::int_(py::reinterpret_borrow<py::object>(v)).cast<int64_t>();
}
bool as_bool(const py::handle& v, const std::string& name) {
  if (!py::isinstance<py::bool_>(v)) throw Error(fmt::format("option {} must be True or False (got {})", name, type_name(v)));
  return v.cast<bool>();
}
std::string as_text(const py::handle& v, const std::string& name) {
  if (!py::isinstance<py::str>(v)) throw Error(fmt::format("option {} must be a string (got {})", name, type_name(v)));
  return v.cast<std::string>();
}

using Setter = std::function<void(Settings&, const py::handle&, const std::string&)>;

/// A Python value as the JSON value of an option of `kind` (None: unset, where it may be).
nlohmann::json to_value(OptionKind kind, bool optional, const py::handle& v, const std::string& name) {
  if (optional && v.is_none()) return nullptr;
  switch (kind) {
    case OptionKind::Number: return as_number(v, name);
    case OptionKind::Integer: return as_int(v, name);
    case OptionKind::Switch: return as_bool(v, name);
    case OptionKind::Text: return as_text(v, name);
  }
  return nullptr;
}

/// Adds the setters of an option set's fields (the struct `pick` selects in Settings) under their
/// keywords and aliases; a keyword two sets declare sets both (norm: the minimum-norm distance and
/// APGD's ball).
template <class O, class Pick>
void add_set(std::map<std::string, Setter>& table, const OptionSet<O>& set, Pick pick) {
  for (const auto& f : set.fields()) {
    if (!f.user) continue;
    Setter setter = [f, pick](Settings& s, const py::handle& v, const std::string& n) {
      f.put(pick(s), to_value(f.kind, f.optional, v, n));
    };
    std::vector<std::string> names = f.aliases;
    names.push_back(f.keyword());
    for (const auto& name : names) {
      auto it = table.find(name);
      if (it == table.end()) {
        table.emplace(name, setter);
      } else {
        it->second = [before = it->second, setter](Settings& s, const py::handle& v, const std::string& n) {
          before(s, v, n);
          setter(s, v, n);
        };
      }
    }
  }
}

/// Every option `attack` takes: the option sets' keywords (the CLI's flags with '-' written '_';
/// `lambda` also as `lambda_`, since lambda is a Python keyword), then the run's.
const std::map<std::string, Setter>& option_table() {
  static const std::map<std::string, Setter> table = [] {
    std::map<std::string, Setter> t;
    visit_attack_option_sets([&t](const auto& set, auto pick) { add_set(t, set, pick); });
    // The run (RunOptions and --threads).
    t["batch_size"] = [](Settings& s, const py::handle& v, const std::string& n) { s.run.batch_size = as_int(v, n); };
    t["offset"] = [](Settings& s, const py::handle& v, const std::string& n) {
      s.run.first_index = as_int(v, n);
      if (s.run.first_index < 0) throw Error(fmt::format("--offset must be >= 0 (got {})", s.run.first_index));
    };
    t["progress"] = [](Settings& s, const py::handle& v, const std::string& n) { s.run.progress = as_bool(v, n); };
    t["threads"] = [](Settings& s, const py::handle& v, const std::string& n) {
      s.threads = v.is_none() ? 0 : static_cast<int>(as_int(v, n));
      if (s.threads < 0) throw Error(fmt::format("--threads must be >= 0 (got {})", s.threads));
    };
    return t;
  }();
  return table;
}

std::vector<std::string> option_names() {
  std::vector<std::string> names;
  for (const auto& [name, setter] : option_table()) names.push_back(name);
  return names;
}

/// (keyword, help) of every attack option the option sets declare, in their order, for the
/// docstring: the help of the command line's flag.
std::vector<std::pair<std::string, std::string>> option_help() {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const auto& set) {
    for (const auto& f : set.fields()) {
      if (!f.user) continue;
      bool seen = false;
      for (auto& [k, h] : out) {
        if (k == f.keyword()) {
          h += "; " + f.help;
          seen = true;
        }
      }
      if (!seen) out.emplace_back(f.keyword(), f.help);
    }
  };
  visit_attack_option_sets([&add](const auto& set, auto) { add(set); });
  return out;
}

Settings parse_options(const py::dict& options) {
  Settings s;
  s.run.progress = false;
  std::vector<std::string> unknown;
  for (const auto& [key, value] : options) {
    std::string name = py::str(key);
    auto it = option_table().find(name);
    if (it == option_table().end()) {
      unknown.push_back(name);
      continue;
    }
    it->second(s, value, name);
  }
  if (!unknown.empty()) {
    std::string known, names;
    for (const auto& n : option_names()) known += (known.empty() ? "" : ", ") + n;
    for (const auto& n : unknown) names += (names.empty() ? "'" : ", '") + n + "'";
    throw Error(fmt::format("unknown option{} {} (options: {})", unknown.size() > 1 ? "s" : "", names, known));
  }
  // As the CLI: --early-stop-8bit turns early stop on unless it is turned off explicitly (which
  // validate() then refuses).
  if (s.attack.early_stop_8bit && !s.attack.early_stop) s.attack.set_early_stop(true);
  s.attack.validate();
  return s;
}

py::object to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

/// Sets the thread count for one call and puts the caller's back afterwards.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : before_(torch::get_num_threads()) { configure_threads(threads); }
  ~ThreadScope() { torch::set_num_threads(before_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int before_;
};

/// The attack and the run's settings an attack call's options give, checked as the CLI checks them.
std::pair<std::unique_ptr<Attack>, Settings> attack_of(const std::string& name, const py::dict& options) {
  Settings s = parse_options(options);
  // As the CLI: an attack takes its own default steps unless `steps` is given.
  if (!options.contains("steps")) s.attack.set_steps(attack_info(name).default_steps);
  auto a = make_attack(name, s.attack, s.sd, s.mn);
  return {std::move(a), std::move(s)};
}

/// `model` is a torch.jit.ScriptModule or a Prepared (objects.hpp). With `full`, the run as the
/// CLI's (checks, metrics float and 8-bit, summary); without, the attack alone, on x's device
/// (`sample_ids`, int64 N, seed the per-sample randomness instead of offset + 0..N-1).
py::dict attack(const py::object& model, const torch::Tensor& x, const torch::Tensor& y, const std::string& name,
                const std::string& model_name, const py::dict& options, bool full, const py::object& sample_ids) {
  // The order of the CLI's checks: the attack and its options, then the model, then the images.
  auto [a, s] = attack_of(name, options);
  check_device(x, "sdsgsm.attack");
  std::shared_ptr<Classifier> classifier = classifier_of(model, model_name, x.device());
  if (!full) {
    auto xf = x.detach().to(torch::kFloat32).contiguous();
    auto yl = y.detach().to(x.device());
    if (xf.dim() != 4 || yl.dim() != 1 || yl.size(0) != xf.size(0)) {
      throw Error(fmt::format("sdsgsm.attack: x must be N x C x H x W and y N labels (got {} and {})",
                              fmt::join(x.sizes(), " x "), fmt::join(y.sizes(), " x ")));
    }
    auto ids = sample_ids.is_none() ? torch::arange(s.run.first_index, s.run.first_index + xf.size(0), torch::kInt64)
                                    : sample_ids.cast<torch::Tensor>().to(torch::kInt64).cpu();
    if (ids.dim() != 1 || ids.size(0) != xf.size(0)) throw Error("sdsgsm.attack: sample_ids must hold one id per image");
    AttackResult r;
    {
      py::gil_scoped_release no_gil;
      ThreadScope threads(s.threads);
      r = attack_only(*classifier, *a, xf, yl, ids, s.run.batch_size);
    }
    return result_dict(r);
  }
  auto source = float_source(x.detach().cpu(), y.detach().cpu(), "sdsgsm.attack");
  RunOptions run = s.run;
  run.keep_adversarial = true;
  run.device = x.device();
  AttackRunResult r;
  {
    py::gil_scoped_release no_gil;
    ThreadScope threads(s.threads);
    r = run_attack(*classifier, *source, *a, run);
  }
  py::dict out;
  out["adversarial"] = r.adversarial;
  out["success"] = r.success;
  out["iterations"] = r.iterations;
  out["forward_passes"] = r.forward_passes;
  out["backward_passes"] = r.backward_passes;
  out["label"] = r.label;
  out["target"] = r.target;
  out["clean_pred"] = r.clean_pred;
  out["adv_pred"] = r.adv_pred;
  out["index"] = r.index;
  out["l2"] = r.l2;
  out["linf"] = r.linf;
  out["l0"] = r.l0;
  out["ssim"] = r.ssim;
  out["psnr"] = r.psnr;
  out["adv_pred_8bit"] = r.adv_pred_8bit;
  out["success_8bit"] = r.success_8bit;
  out["l2_8bit"] = r.l2_8bit;
  out["linf_8bit"] = r.linf_8bit;
  out["l0_8bit"] = r.l0_8bit;
  out["ssim_8bit"] = r.ssim_8bit;
  out["psnr_8bit"] = r.psnr_8bit;
  out["summary"] = to_python(r.summary());
  out["report"] = to_python(r.report());
  out["config"] = to_python(r.config);
  out["warnings"] = r.warnings;
  out["seconds"] = r.attack_seconds;
  out["ddi_seconds"] = r.allocation_seconds;
  return out;
}

/// sdsgsm.transfer: the attack on `source`, its adversarials evaluated on each (name, model) of
/// `targets` (transfer.hpp's cells).
py::dict transfer(const py::object& source, const std::string& source_name, const py::list& targets,
                  const torch::Tensor& x, const torch::Tensor& y, const std::string& name, const py::dict& options) {
  auto [a, s] = attack_of(name, options);
  check_device(x, "sdsgsm.transfer");
  auto src = classifier_of(source, source_name, x.device());
  std::vector<std::pair<std::string, std::shared_ptr<Classifier>>> to;
  for (const auto& t : targets) {
    auto pair = t.cast<py::tuple>();
    auto target_name = pair[0].cast<std::string>();
    to.emplace_back(target_name, classifier_of(pair[1], target_name, x.device()));
  }
  auto data = float_source(x.detach().cpu(), y.detach().cpu(), "sdsgsm.transfer");
  RunOptions run = s.run;
  run.keep_adversarial = true;
  run.device = x.device();
  std::vector<TransferCell> cells;
  {
    py::gil_scoped_release no_gil;
    ThreadScope threads(s.threads);
    AttackRunResult r = run_attack(*src, *data, *a, run);
    auto clean = x.detach().cpu().to(torch::kFloat32);
    for (auto& [target_name, target] : to) {
      cells.push_back(transfer_cell(r, clean, *target, source_name, target_name, run.batch_size, run.device));
    }
  }
  py::list out;
  for (const auto& c : cells) out.append(to_python(c.to_json()));
  py::dict result;
  result["cells"] = out;
  result["table"] = transfer_tables(cells);
  return result;
}

void check_pair(const torch::Tensor& x, const torch::Tensor& x_adv) {
  if (x.dim() != 4 || !x.is_floating_point() || !x_adv.is_floating_point() || x.sizes() != x_adv.sizes()) {
    throw Error(fmt::format("sdsgsm.metrics: x and x_adv must be N x C x H x W floating-point tensors of one shape "
                            "(got {} {} and {} {})",
                            c10::toString(x.scalar_type()), fmt::join(x.sizes(), " x "),
                            c10::toString(x_adv.scalar_type()), fmt::join(x_adv.sizes(), " x ")));
  }
}

py::dict metrics(const torch::Tensor& x_in, const torch::Tensor& adv_in) {
  check_pair(x_in, adv_in);
  auto x = x_in.detach().to(torch::kFloat32), adv = adv_in.detach().to(torch::kFloat32);
  torch::Tensor l2, linf, l0, ss, ps;
  {
    py::gil_scoped_release no_gil;
    l2 = l2_distance(x, adv);
    linf = linf_distance(x, adv);
    l0 = l0_fraction(x, adv);
    ss = ssim(x, adv);
    ps = psnr(x, adv);
  }
  py::dict out;
  out["l2"] = l2.to(torch::kFloat64);
  out["linf"] = linf.to(torch::kFloat64);
  out["l0"] = l0.to(torch::kFloat64);
  out["ssim"] = ss.to(torch::kFloat64);
  out["psnr"] = ps.to(torch::kFloat64);
  return out;
}

/// The TorchScript file `load_model` hands to torch.jit.load: the file itself when it is
/// TorchScript, else (a zoo name or an `sdsgsm train` weights file) the network exported into
/// `dir`. Resolved and checked as `--model` is, with the same errors.
std::string model_file(const std::string& name_or_path, const std::string& dir) {
  std::shared_ptr<Classifier> c = load_classifier(name_or_path);
  if (c->kind() == "torchscript") return name_or_path;
  fs::path path = fs::exists(name_or_path) ? fs::path(name_or_path) : find_zoo_weights(name_or_path);
  LoadedNetwork loaded = load_network(path);
  loaded.net->eval();
  fs::path out = fs::path(dir) / (loaded.arch + "-script.pt");
  export_torchscript(*loaded.net, loaded.arch, out);
  return out.string();
}

std::pair<torch::Tensor, torch::Tensor> load_data(const std::string& path, const std::string& split, int64_t offset,
                                                  int64_t count) {
  if (split != "test" && split != "train") throw Error(fmt::format("--split must be test or train (got '{}')", split));
  Dataset d;
  {
    py::gil_scoped_release no_gil;
    d = open_dataset(path, split == "train" ? Split::Train : Split::Test, offset, count);
  }
  return {d.float_images(0, d.size()), d.labels};
}

}  // namespace
}  // namespace sdsgsm::python

PYBIND11_MODULE(_sdsgsm, m) {
  using namespace sdsgsm::python;
  m.doc() = "sdsgsm's C++ library (use the sdsgsm package)";
  // sdsgsm::Error, the library's one-line messages, as sdsgsm.Error (a ValueError).
  py::register_exception<sdsgsm::Error>(m, "Error", PyExc_ValueError);
  m.def("attack", &attack, py::arg("model"), py::arg("x"), py::arg("y"), py::arg("attack"), py::arg("model_name"),
        py::arg("options"), py::arg("full") = true,
        py::arg("sample_ids") = py::none());
  m.def(
      "check_attack", [](const std::string& name, const py::dict& options) { attack_of(name, options); },
      py::arg("attack"), py::arg("options"));
  m.def("transfer", &transfer, py::arg("source"), py::arg("source_name"), py::arg("targets"), py::arg("x"),
        py::arg("y"), py::arg("attack"), py::arg("options"));
  register_objects(m);
  register_commands(m);
  m.def("metrics", &metrics, py::arg("x"), py::arg("x_adv"));
  m.def("model_file", &model_file, py::arg("name_or_path"), py::arg("dir"));
  m.def("load_data", &load_data, py::arg("path"), py::arg("split"), py::arg("offset"), py::arg("count"));
  m.def("attack_names", [] { return sdsgsm::attack_names(); });
  m.def("option_names", &option_names);
  m.def("option_help", &option_help);
  m.def("version", &sdsgsm::version_string);
}
