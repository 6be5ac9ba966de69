// The HTML report's input: run folders found below the folders given (compare, reproduce), read
// back, labelled as reproduce named them, grouped by model and images; the eps curves and paired
// statistics stored beside them.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "report/report_internal.hpp"
#include "sdsgsm/attacks.hpp"
#include "sdsgsm/reproduce_tables.hpp"

namespace sdsgsm {
namespace report_detail {
namespace {

bool is_run_folder(const fs::path& dir) { return fs::is_regular_file(dir / "metrics.json"); }

/// A path without a trailing separator, so that filename() names the folder.
fs::path tidy(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (n.filename().empty() && n.has_parent_path()) n = n.parent_path();
  return n;
}

}  // namespace

nlohmann::json json_or_null(const fs::path& f) {
  if (!fs::is_regular_file(f)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(f));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}


namespace {

std::vector<fs::path> sorted_subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_directory(ec)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// The rows of one model in a reproduce folder's results.json ({"rows": [...]} or, from older
/// versions, the array itself).
const nlohmann::json& model_rows(const nlohmann::json& entry) {
  static const nlohmann::json none = nlohmann::json::array();
  if (entry.is_object() && entry.contains("rows") && entry["rows"].is_array()) return entry["rows"];
  return entry.is_array() ? entry : none;
}

/// The folder reproduce wrote a row's run into, below its model's folder: "<regime>-<label>".
std::string row_folder(const nlohmann::json& r) {
  const std::string f = reproduce_folder_name(r["label"].get<std::string>());
  return r.contains("regime") && r["regime"].is_string() ? r["regime"].get<std::string>() + "-" + f : f;
}


/// The order a compare (compare.json) or reproduce (results.json) folder ran its attacks in, as
/// folder paths relative to `dir`.
std::vector<std::string> run_order(const fs::path& dir) {
  std::vector<std::string> order;
  const nlohmann::json compare = json_or_null(dir / "compare.json");
  if (compare.is_object() && compare.contains("results") && compare["results"].is_array()) {
    for (const auto& r : compare["results"]) {
      if (r.is_object() && r.contains("attack") && r["attack"].is_string()) order.push_back(r["attack"].get<std::string>());
    }
  }
  const nlohmann::json results = json_or_null(dir / "results.json");
  if (results.is_object() && results.contains("models") && results["models"].is_object()) {
    for (const auto& [model, entry] : results["models"].items()) {
      for (const auto& r : model_rows(entry)) {
        if (r.is_object() && r.contains("label") && r["label"].is_string()) {
          order.push_back(reproduce_folder_name(model) + "/" + row_folder(r));
        }
      }
    }
  }
  return order;
}

/// Run folders one or two levels below `dir`, in the order its compare.json or results.json gives,
/// then by name.
std::vector<fs::path> runs_below(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& child : sorted_subfolders(dir)) {
    if (is_run_folder(child)) {
      found.push_back(child);
      continue;
    }
    for (const auto& grandchild : sorted_subfolders(child)) {
      if (is_run_folder(grandchild)) found.push_back(grandchild);
    }
  }
  const auto order = run_order(dir);
  auto rank = [&](const fs::path& p) {
    const std::string rel = p.lexically_relative(dir).generic_string();
    auto it = std::find(order.begin(), order.end(), rel);
    return it == order.end() ? order.size() : static_cast<size_t>(it - order.begin());
  };
  std::stable_sort(found.begin(), found.end(), [&](const fs::path& a, const fs::path& b) { return rank(a) < rank(b); });
  return found;
}

/// The results.json row (two levels up) of a reproduce run folder; null for other folders.
nlohmann::json reproduce_row(const fs::path& dir) {
  const fs::path parent = dir.parent_path();
  const nlohmann::json results = json_or_null(parent.parent_path() / "results.json");
  if (!results.is_object() || !results.contains("models") || !results["models"].is_object()) return nullptr;
  for (const auto& [model, entry] : results["models"].items()) {
    if (reproduce_folder_name(model) != parent.filename().string()) continue;
    for (const auto& r : model_rows(entry)) {
      if (r.is_object() && r.contains("label") && r["label"].is_string() && row_folder(r) == dir.filename().string()) {
        return r;
      }
    }
  }
  return nullptr;
}

/// A run's name in the report: the label reproduce gave it (with its regime), else its folder's name.
std::string run_label(const fs::path& dir) {
  const nlohmann::json row = reproduce_row(dir);
  return row.is_null() ? dir.filename().string() : reproduce_run_name(row);
}


}  // namespace

std::string group_key(const nlohmann::json& m) {
  nlohmann::json k;
  for (const char* key : {"model", "data", "split", "offset", "count"}) k[key] = m.value(key, nlohmann::json());
  return k.dump();
}

Run load_run(const fs::path& dir) {
  Run run;
  run.dir = dir;
  run.r = read_run(dir);  // checks the folder and its files
  run.metrics = nlohmann::json::parse(read_file(dir / "metrics.json"));
  run.timing = json_or_null(dir / "timing.json");
  run.label = run_label(dir);
  const nlohmann::json row = reproduce_row(dir);
  run.regime = row.is_object() ? row.value("regime", std::string()) : std::string();
  std::error_code ec;
  run.adversarial = fs::is_regular_file(dir / "adversarial" / "000000.pt", ec);
  return run;
}

/// Eps curves of the group's runs, from curves.json files beside them.
std::vector<Curve> eps_curves_of(const Group& g) {
  std::set<std::string> labels, files;
  for (const auto& run : g.runs) {
    labels.insert(run.label);
    files.insert(run.dir.parent_path().string());
  }
  std::vector<Curve> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& dir : files) {
    const nlohmann::json j = json_or_null(fs::path(dir) / "curves.json");
    if (!j.is_array()) continue;
    std::vector<Curve> curves;
    try {
      curves = curves_from_json(j);
    } catch (const Error&) {
      continue;
    }
    for (auto& c : curves) {
      if (c.curve == "eps" && labels.count(c.attack) && seen.insert({c.attack, c.basis}).second) out.push_back(std::move(c));
    }
  }
  return out;
}

size_t reference_of(const Group& g) {
  std::set<std::string> dirs;
  for (const auto& run : g.runs) dirs.insert(run.dir.parent_path().string());
  if (dirs.size() == 1) {
    const nlohmann::json j = json_or_null(fs::path(*dirs.begin()) / "paired.json");
    if (j.is_array()) {
      for (const auto& p : j) {
        if (!p.is_object() || !p.contains("a") || !p["a"].is_string()) continue;
        for (size_t i = 0; i < g.runs.size(); ++i) {
          if (g.runs[i].label == p["a"].get<std::string>()) return i;
        }
      }
    }
  }
  for (size_t i = 0; i < g.runs.size(); ++i) {
    if (g.runs[i].r.config.value("attack", std::string()) == kSdsgsm) return i;
  }
  return 0;
}

std::vector<size_t> featured_runs(const Group& g, size_t limit) {
  const size_t ref = reference_of(g);
  std::vector<size_t> out{ref};
  for (size_t i = 0; i < g.runs.size() && out.size() < limit; ++i) {
    if (i != ref) out.push_back(i);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<PairedStats> paired_of(const Group& g, const ReportOptions& o, std::string& source) {
  if (g.runs.size() < 2) return {};
  const size_t ref = reference_of(g);
  const std::string& a = g.runs[ref].label;
  std::set<std::string> others, dirs;
  for (const auto& run : g.runs) {
    if (run.label != a) others.insert(run.label);
    dirs.insert(run.dir.parent_path().string());
  }
  if (dirs.size() == 1) {
    const nlohmann::json j = json_or_null(fs::path(*dirs.begin()) / "paired.json");
    if (j.is_array()) {
      try {
        std::vector<PairedStats> kept;
        for (auto& s : paired_from_json(j)) {
          if (s.a == a && others.count(s.b)) kept.push_back(std::move(s));
        }
        if (kept.size() == 2 * others.size()) {  // every other run, both bases
          source = fmt::format("paired.json: {} resamples, seed {}", kept[0].resamples, kept[0].seed);
          return kept;
        }
      } catch (const Error&) {
      }
    }
  }
  BootstrapOptions b;
  b.resamples = o.bootstrap_resamples;
  b.seed = o.bootstrap_seed;
  source = fmt::format("{} resamples, seed {}", b.resamples, b.seed);
  std::vector<PairedStats> out;
  for (Basis basis : {Basis::Float, Basis::Rounded8bit}) {
    for (size_t i = 0; i < g.runs.size(); ++i) {
      if (i != ref) out.push_back(paired_l2(a, g.runs[ref].r, g.runs[i].label, g.runs[i].r, basis, b));
    }
  }
  return out;
}

std::string group_title(const nlohmann::json& info) {
  const std::string regime = info.value("regime", std::string());
  const std::string prefix = regime == "fixed"        ? "fixed iterations · "
                             : regime == "early_stop" ? "early stop · "
                             : regime.empty()         ? ""
                                                      : "minimum norm · ";
  return prefix + fmt::format("{} · {} {} images of {} from #{}", info.value("model", std::string("?")),
                     info.value("count", int64_t{0}), info.value("split", std::string()),
                     info.value("data", std::string("?")), info.value("offset", int64_t{0}));
}

}  // namespace report_detail

using report_detail::is_run_folder;
using report_detail::runs_below;
using report_detail::tidy;

std::vector<fs::path> find_run_folders(const std::vector<fs::path>& inputs) {
  if (inputs.empty()) throw Error("no run folder given");
  std::vector<fs::path> out;
  std::set<std::string> seen;
  for (const auto& given : inputs) {
    const fs::path dir = tidy(given);
    if (!fs::exists(dir)) throw Error(fmt::format("'{}' does not exist", given.string()));
    if (!fs::is_directory(dir)) throw Error(fmt::format("'{}' is not a folder", given.string()));
    std::vector<fs::path> found = is_run_folder(dir) ? std::vector<fs::path>{dir} : runs_below(dir);
    if (found.empty()) {
      throw Error(fmt::format("'{}' is not an sdsgsm run folder (no metrics.json) and holds none", given.string()));
    }
    for (auto& f : found) {
      if (seen.insert(fs::weakly_canonical(f).string()).second) out.push_back(f);
    }
  }
  return out;
}

}  // namespace sdsgsm
