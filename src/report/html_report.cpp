// The HTML report of attack runs: one self-contained page (inline SVG charts and PNG data URIs,
// an inline style sheet, no script, no network), built from run folders alone. Runs on the same
// model and images form a group, compared with each other: summary table, curves, paired
// statistics, distributions, examples, per-class figures, configuration and timings.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "report/svg.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
namespace {

using svg::escape;

// ---------------------------------------------------------------- finding and loading runs

bool is_run_folder(const fs::path& dir) { return fs::is_regular_file(dir / "metrics.json"); }

/// A path without a trailing separator, so that filename() names the folder.
fs::path tidy(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (n.filename().empty() && n.has_parent_path()) n = n.parent_path();
  return n;
}

/// "I-FGSM (early stop)" -> "I_FGSM__early_stop_": how reproduce names its run folders.
std::string folder_name(std::string text) {
  for (char& c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return text;
}

nlohmann::json json_or_null(const fs::path& f) {
  if (!fs::is_regular_file(f)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(f));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

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
  const std::string f = folder_name(r["label"].get<std::string>());
  return r.contains("regime") && r["regime"].is_string() ? r["regime"].get<std::string>() + "-" + f : f;
}

/// A row's name in the report, as in curves.json: its regime and label.
std::string row_label(const nlohmann::json& r) {
  const std::string regime = r.value("regime", std::string());
  const std::string label = r["label"].get<std::string>();
  if (regime == "fixed") return "fixed: " + label;
  if (regime == "early_stop") return "early stop: " + label;
  return label;
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
          order.push_back(folder_name(model) + "/" + row_folder(r));
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
    if (folder_name(model) != parent.filename().string()) continue;
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
  return row.is_null() ? dir.filename().string() : row_label(row);
}

struct Run {
  fs::path dir;
  std::string label;
  std::string regime;  ///< a reproduce run's regime (fixed, early_stop, minimum_norm); "" otherwise
  nlohmann::json metrics, timing;  ///< timing: null when the folder has no timing.json
  AttackRunResult r;
  bool adversarial = false;  ///< the folder holds adversarial shards
};

/// Runs on the same model and images: compared with each other.
struct Group {
  nlohmann::json info;  ///< model, data, split, offset, count
  std::vector<Run> runs;
  std::vector<std::string> notes;
};

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

// ---------------------------------------------------------------- small HTML helpers

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s : {18, 12, 6, 0}) out += table[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// An <img> of a 3 x H x W image in [0,1], inline.
std::string img(const torch::Tensor& image, const std::string& alt) {
  auto rgb = image.size(0) == 1 ? image.expand({3, image.size(1), image.size(2)}) : image;
  return fmt::format("<img class=\"px\" src=\"data:image/png;base64,{}\" alt=\"{}\" title=\"{}\">",
                     base64(encode_png(rgb.detach().to(torch::kCPU, torch::kFloat32))), escape(alt), escape(alt));
}

std::string pct(double v) { return std::isfinite(v) ? fmt::format("{:.2f}%", 100 * v) : "–"; }
std::string num(double v, int decimals) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : "–"; }

double number_at(const nlohmann::json& j, const std::string& path_a, const std::string& key) {
  if (!j.is_object() || !j.contains(path_a)) return NAN;
  const auto& o = j[path_a];
  if (!o.is_object() || !o.contains(key) || !o[key].is_number()) return NAN;
  return o[key].get<double>();
}
double number_at(const nlohmann::json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

std::vector<double> doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

const char* kStyle = R"(
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1d;font-size:14px}
main{max-width:1340px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:12px 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #0072B2}
h3{font-size:16px;margin:22px 0 8px}h4{font-size:14px;margin:14px 0 6px}
.sub{color:#555;margin:0 0 12px}
table{border-collapse:collapse;background:white;margin:4px 0 10px;font-size:13px}
th,td{border:1px solid #d8d8d8;padding:3px 7px;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:10px}.charts svg{background:white;border:1px solid #ddd}
.warn{background:#fff4d6;border-left:4px solid #E69F00;padding:5px 10px;margin:4px 0}
.note{background:#e9f1fb;border-left:4px solid #56B4E9;padding:5px 10px;margin:4px 0}
img.px{width:96px;height:96px;image-rendering:pixelated;display:block}
.grid td{text-align:center;vertical-align:top;padding:4px}.grid td.cap{text-align:left;font-size:12px;max-width:260px}
pre{background:white;border:1px solid #ddd;padding:6px;font-size:12px;overflow-x:auto}
details{margin:6px 0}summary{cursor:pointer;color:#0a4f86}
.ok{color:#007a4d}.bad{color:#b03a00}
nav a{margin-right:14px}
)";

// ---------------------------------------------------------------- the sections

std::string summary_section(const Group& g) {
  std::string h =
      "<h3>Summary</h3>\n<p class=\"sub\">Over the images the model classified correctly before the attack. Float: the "
      "adversarials as computed; 8-bit: rounded to 8-bit pixels (as a saved PNG). l2 and l∞ on the [0,1] pixel scale.</p>\n"
      "<table><tr><th>attack</th><th>images</th><th>clean acc.</th><th>ASR</th><th>ASR 8-bit</th><th>l2 mean</th>"
      "<th>l2 median</th><th>l2 8-bit</th><th>l∞ max</th><th>SSIM</th><th>SSIM 8-bit</th><th>PSNR (dB)</th>"
      "<th>iterations</th></tr>\n";
  for (const auto& run : g.runs) {
    const nlohmann::json s = run.metrics.value("summary", nlohmann::json::object());
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        escape(run.label), run.r.size(), pct(number_at(s, "clean_accuracy")), pct(number_at(s, "float", "asr")),
        pct(number_at(s, "rounded_8bit", "asr")), num(number_at(s, "float", "l2_mean"), 3), num(number_at(s, "float", "l2_median"), 3),
        num(number_at(s, "rounded_8bit", "l2_mean"), 3), num(number_at(s, "float", "linf_max"), 4), num(number_at(s, "float", "ssim_mean"), 4),
        num(number_at(s, "rounded_8bit", "ssim_mean"), 4), num(number_at(s, "float", "psnr_mean"), 2), num(number_at(s, "iterations_mean"), 2));
  }
  h += "</table>\n";
  for (const auto& run : g.runs) {
    for (const auto& w : run.r.warnings) h += fmt::format("<div class=\"warn\"><b>{}</b>: {}</div>\n", escape(run.label), escape(w));
  }
  bool any = false;
  for (const auto& run : g.runs) any = any || !run.r.warnings.empty();
  if (!any) h += "<p class=\"ok\">The evaluation checks found nothing to warn about.</p>\n";
  return h;
}

svg::LineChart asr_chart(const std::string& title, const std::string& x_label) {
  svg::LineChart c;
  c.title = title;
  c.x_label = x_label;
  c.y_label = "attack success rate";
  c.y_percent = true;
  c.y_min = 0;
  c.y_max = 1;
  return c;
}

std::string curves_section(const Group& g, const CurveGrid& grid, const std::vector<Curve>& eps) {
  std::string h =
      "<h3>Curves</h3>\n<p class=\"sub\">The share of correctly classified images that an attack fools within an l2 "
      "budget (left: the smaller the budget at which a curve rises, the better), or while keeping SSIM at or above a "
      "floor (right).</p>\n<div class=\"charts\">\n";
  for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
    const std::string tag = b == Basis::Float ? "float" : "8-bit";
    auto l2 = asr_chart("ASR against the l2 budget (" + tag + ")", "l2 budget (||δ||₂, pixels in [0,1])");
    l2.x_min = 0;
    l2.x_max = grid.l2_budgets.back();
    auto ss = asr_chart("ASR against the SSIM floor (" + tag + ")", "SSIM floor");
    ss.x_min = grid.ssim_floors.front();
    ss.x_max = grid.ssim_floors.back();
    for (const auto& run : g.runs) {
      l2.series.push_back({run.label, grid.l2_budgets, asr_within_l2(run.r, grid.l2_budgets, b), false, ""});
      ss.series.push_back({run.label, grid.ssim_floors, asr_above_ssim(run.r, grid.ssim_floors, b), false, ""});
    }
    h += svg::line_chart(l2) + svg::line_chart(ss);
  }
  if (!eps.empty()) {
    auto c = asr_chart("ASR against eps (solid: float, dashed: 8-bit)", "eps (l∞ budget, in 1/255)");
    // One colour per attack, the same as on the other charts; 8-bit dashed.
    for (size_t i = 0; i < g.runs.size(); ++i) {
      for (const auto& e : eps) {
        if (e.attack != g.runs[i].label) continue;
        std::vector<double> x;
        for (double v : e.x) x.push_back(v * 255);
        c.series.push_back({e.attack + (e.basis == "8bit" ? " (8-bit)" : ""), x, e.asr, e.basis == "8bit", svg::color(i)});
      }
    }
    h += svg::line_chart(c);
  }
  h += "</div>\n";
  if (eps.empty()) h += "<p class=\"note\">No eps curve: these runs have no curves.json with eps curves beside them.</p>\n";
  return h;
}

std::string paired_table(const std::vector<PairedStats>& stats, const std::string& basis) {
  std::string h =
      "<table><tr><th>a</th><th>b</th><th>images both fool</th><th>l2 a</th><th>l2 b</th><th>l2 a − b</th>"
      "<th>95% interval</th><th>a smaller</th><th>b smaller</th><th>ties</th></tr>\n";
  for (const auto& s : stats) {
    if (s.basis != basis) continue;
    const char* cls = s.n == 0 ? "" : s.ci_high < 0 ? " class=\"ok\"" : s.ci_low > 0 ? " class=\"bad\"" : "";
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>\n",
        escape(s.a), escape(s.b), s.n, num(s.mean_a, 3), num(s.mean_b, 3), cls,
        std::isfinite(s.mean_diff) ? fmt::format("{:+.3f}", s.mean_diff) : "–",
        s.n ? fmt::format("[{:+.3f}, {:+.3f}]", s.ci_low, s.ci_high) : "–", s.n ? pct(s.a_smaller) : "–",
        s.n ? pct(s.b_smaller) : "–", s.n ? pct(s.ties) : "–");
  }
  return h + "</table>\n";
}

std::string paired_section(const std::vector<PairedStats>& stats, const std::string& source) {
  if (stats.empty()) return "";
  std::string h = fmt::format(
      "<h3>Paired statistics</h3>\n<p class=\"sub\">Per image, over the images both attacks fool: the mean l2 "
      "difference with a percentile bootstrap 95% interval ({}), and how often each attack's perturbation is the "
      "smaller. Green: a is smaller with confidence; orange: b is.</p>\n",
      escape(source));
  h += "<h4>Float</h4>\n" + paired_table(stats, "float");
  h += "<details><summary>8-bit rounded adversarials</summary>\n" + paired_table(stats, "8bit") + "</details>\n";
  return h;
}

std::string distribution_section(const Group& g, const CurveGrid& grid) {
  double ssim_lo = 1;
  std::vector<std::vector<double>> l2s, ssims;
  for (const auto& run : g.runs) {
    auto fooled = counted_samples(run.r).logical_and(run.r.success);
    l2s.push_back(doubles(run.r.l2.index({fooled})));
    ssims.push_back(doubles(run.r.ssim.index({fooled})));
    for (double v : ssims.back()) ssim_lo = std::min(ssim_lo, v);
  }
  ssim_lo = std::min(0.99, std::floor(ssim_lo * 100) / 100);
  std::string h = fmt::format(
      "<h3>Distributions</h3>\n<p class=\"sub\">l2 and SSIM of the fooled images (float), one row per attack, "
      "on shared axes (l2 0 to {:g}, SSIM {:g} to 1).</p>\n",
      grid.l2_budgets.back(), ssim_lo);
  for (size_t i = 0; i < g.runs.size(); ++i) {
    svg::Histogram a;
    a.title = g.runs[i].label + ": l2 (" + std::to_string(l2s[i].size()) + " images)";
    a.x_label = "||δ||₂";
    a.values = l2s[i];
    a.lo = 0;
    a.hi = grid.l2_budgets.back();
    a.color = svg::color(i);
    svg::Histogram b = a;
    b.title = g.runs[i].label + ": SSIM";
    b.x_label = "SSIM";
    b.values = ssims[i];
    b.lo = ssim_lo;
    b.hi = 1;
    h += "<div class=\"charts\">" + svg::histogram(a) + svg::histogram(b) + "</div>\n";
  }
  return h;
}

/// The example images of a group: clean images, their labels and the model, each when available.
struct Examples {
  std::vector<int64_t> rows;  ///< rows of the runs' per-sample tables
  torch::Tensor clean;        ///< k x C x H x W, undefined when the data set cannot be read
  std::vector<std::string> classes;
  std::shared_ptr<Classifier> model;
};

std::string class_name(const Examples& e, int64_t k) {
  return k >= 0 && k < static_cast<int64_t>(e.classes.size()) ? e.classes[k] : fmt::format("class {}", k);
}

Examples prepare_examples(Group& g, const ReportOptions& o) {
  Examples e;
  const Run& first = g.runs.front();
  auto counted = counted_samples(first.r);
  for (int64_t i = 0; i < first.r.size() && static_cast<int64_t>(e.rows.size()) < o.examples; ++i) {
    if (counted[i].item<bool>()) e.rows.push_back(i);
  }
  const std::string data = g.info.value("data", std::string());
  const std::string split = g.info.value("split", std::string("test"));
  try {
    auto source = open_image_source(data, split == "train" ? Split::Train : Split::Test, g.info.value("offset", int64_t{0}),
                                    g.info.value("count", int64_t{-1}));
    e.classes = source->classes();
    std::vector<torch::Tensor> parts;
    for (int64_t row : e.rows) parts.push_back(source->float_images(row, 1));
    if (!parts.empty()) e.clean = torch::cat(parts);
  } catch (const std::exception& ex) {
    g.notes.push_back(fmt::format("The images of '{}' cannot be read ({}): the examples show the adversarials only, without "
                                  "perturbation or maps. Run the report from the folder the attack ran in.",
                                  data, ex.what()));
  }
  if (e.classes.empty()) e.classes = cifar10_classes();
  if (o.model) {
    const std::string model = g.info.value("model", std::string());
    try {
      e.model = load_classifier(model);
    } catch (const std::exception& ex) {
      g.notes.push_back(fmt::format("The model '{}' cannot be loaded ({}): no confidences and no allocation maps.", model,
                                    ex.what()));
    }
  }
  return e;
}

/// SD-SGSM's options as its run recorded them (attack_config).
SdsgsmOptions sdsgsm_options(const nlohmann::json& c) {
  SdsgsmOptions sd;
  const auto& d = c.at("ddi");
  sd.ddi.window = d.at("window").get<int64_t>();
  sd.ddi.stride = d.at("stride").get<int64_t>();
  sd.ddi.fill = d.at("fill").get<std::string>();
  sd.ddi.score = d.at("score").get<std::string>();
  sd.rho = c.at("rho").get<double>();
  sd.lambda = c.at("lambda").get<double>();
  sd.map = c.at("map").get<std::string>();
  sd.gamma = c.value("gamma", 1.0);
  return sd;
}

std::string examples_section(Group& g, const Examples& e) {
  std::string h =
      "<h3>Examples</h3>\n<p class=\"sub\">The first correctly classified images. Perturbation: 0.5 + δ / (2 max|δ|), "
      "so grey is no change. For attacks with an allocation map: the map M (bright: full budget, dark: λ) and the DDI "
      "sensitivity over the image (recomputed on the clean image with the run's settings: the initial map).</p>\n";
  if (e.rows.empty()) return h + "<p class=\"note\">No correctly classified image to show.</p>\n";
  const auto rows = torch::tensor(e.rows, torch::kInt64);
  const int64_t need = e.rows.back() + 1;
  for (const auto& run : g.runs) {
    h += fmt::format("<h4>{}</h4>\n", escape(run.label));
    if (!run.adversarial) {
      h += "<p class=\"note\">No adversarial images in this run folder (run with --no-adversarial): no examples.</p>\n";
      continue;
    }
    torch::Tensor adv;
    try {
      adv = read_adversarial(run.dir, need).index_select(0, rows).to(torch::kFloat32);
    } catch (const std::exception& ex) {
      h += fmt::format("<p class=\"note\">The adversarial images cannot be read: {}</p>\n", escape(ex.what()));
      continue;
    }
    torch::Tensor conf, map, sens;
    const bool clean = e.clean.defined();
    const bool allocation = run.r.config.value("allocation", std::string()) == "map";
    if (e.model) {
      torch::NoGradGuard no_grad;
      auto p = torch::softmax(e.model->forward(adv), 1);
      conf = p.gather(1, run.r.adv_pred.index_select(0, rows).view({-1, 1}).clamp(0, p.size(1) - 1)).view(-1);
      if (allocation && clean) {
        try {
          auto sd = sdsgsm_options(run.r.config);
          auto y = run.r.label.index_select(0, rows);
          auto s = sensitivity_map(*e.model, e.clean, y, sd.ddi);
          auto m = allocation_from_sensitivity(s, sd);
          auto lo = m.flatten(1).amin(1).view({-1, 1, 1, 1});
          map = hot_colormap(((m - lo) / (1 - lo).clamp_min(1e-12)).clamp(0, 1));
          sens = 0.45 * e.clean + 0.55 * hot_colormap(normalize_sensitivity(s));
        } catch (const std::exception& ex) {
          h += fmt::format("<p class=\"note\">The allocation map cannot be recomputed: {}</p>\n", escape(ex.what()));
        }
      }
    }
    h += "<table class=\"grid\"><tr><th>clean</th><th>adversarial</th><th>perturbation</th>";
    if (map.defined()) h += "<th>allocation M</th><th>DDI sensitivity</th>";
    h += "<th>caption</th></tr>\n";
    for (size_t k = 0; k < e.rows.size(); ++k) {
      const int64_t row = e.rows[k];
      const int64_t label = run.r.label[row].item<int64_t>(), pred = run.r.adv_pred[row].item<int64_t>();
      const bool fooled = run.r.success[row].item<bool>();
      h += "<tr>";
      h += "<td>" + (clean ? img(e.clean[k], "clean") : std::string("–")) + "</td>";
      h += "<td>" + img(adv[k], "adversarial") + "</td>";
      if (clean) {
        auto d = adv[k] - e.clean[k];
        const double amp = std::max(1e-12, d.abs().max().item<double>());
        h += "<td>" + img((0.5 + d / (2 * amp)).clamp(0, 1), "perturbation, amplified") + "</td>";
      } else {
        h += "<td>–</td>";
      }
      if (map.defined()) h += "<td>" + img(map[k], "allocation map") + "</td><td>" + img(sens[k], "DDI sensitivity") + "</td>";
      h += fmt::format(
          "<td class=\"cap\">image #{}<br>true: <b>{}</b><br>adversarial: <b class=\"{}\">{}</b>{}<br>l2 {:.3f} · "
          "SSIM {:.4f}<br>{}</td></tr>\n",
          run.r.index[row].item<int64_t>(), escape(class_name(e, label)), fooled ? "bad" : "ok", escape(class_name(e, pred)),
          conf.defined() ? fmt::format(" ({:.1f}%)", 100 * conf[k].item<double>()) : "", run.r.l2[row].item<double>(),
          run.r.ssim[row].item<double>(), fooled ? "fooled" : "not fooled");
    }
    h += "</table>\n";
  }
  return h;
}

std::string per_class_section(const Group& g, const Examples& e) {
  int64_t classes = static_cast<int64_t>(e.classes.size());
  for (const auto& run : g.runs) {
    if (run.r.size() > 0) {
      classes = std::max({classes, run.r.label.max().item<int64_t>() + 1, run.r.adv_pred.max().item<int64_t>() + 1});
    }
  }
  std::string h =
      "<h3>Per class</h3>\n<p class=\"sub\">ASR (float) per true class over the correctly classified images, and "
      "where the adversarials land: rows the true class, columns the adversarial prediction.</p>\n<table><tr><th>attack</th>";
  for (int64_t k = 0; k < classes; ++k) h += "<th>" + escape(class_name(e, k)) + "</th>";
  h += "</tr>\n";
  std::string matrices = "<div class=\"charts\">\n";
  for (const auto& run : g.runs) {
    auto counted = counted_samples(run.r);
    auto labels = run.r.label.index({counted}), preds = run.r.adv_pred.index({counted});
    auto fooled = run.r.success.index({counted});
    h += "<tr><td>" + escape(run.label) + "</td>";
    svg::HeatMap m;
    m.title = run.label;
    m.x_label = "adversarial prediction";
    m.y_label = "true class";
    for (int64_t k = 0; k < classes; ++k) {
      m.rows.push_back(class_name(e, k));
      m.columns.push_back(class_name(e, k));
      auto in = labels.eq(k);
      const int64_t n = in.sum().item<int64_t>();
      const double asr = n ? fooled.index({in}).to(torch::kFloat64).mean().item<double>() : NAN;
      // Cell shade: the more fooled, the deeper.
      const int shade = std::isfinite(asr) ? static_cast<int>(std::lround(255 - 90 * asr)) : 255;
      h += fmt::format("<td style=\"background:#ff{:02x}{:02x}\" title=\"{} images\">{}</td>", shade, shade, n, pct(asr));
      std::vector<double> row(classes, 0);
      auto p = preds.index({in});
      for (int64_t i = 0; i < p.size(0); ++i) {
        const int64_t c = p[i].item<int64_t>();
        if (c >= 0 && c < classes) row[c] += 1;
      }
      m.values.push_back(row);
    }
    h += "</tr>\n";
    matrices += svg::heat_map(m);
  }
  return h + "</table>\n" + matrices + "</div>\n";
}

std::string config_section(const Group& g) {
  std::string h =
      "<h3>Configuration and timings</h3>\n<table><tr><th>attack</th><th>wall (s)</th><th>attack (s)</th>"
      "<th>DDI (s)</th><th>images/s</th><th>threads</th><th>ranks</th><th>peak memory (MB)</th><th>version</th></tr>\n";
  bool missing = false;
  for (const auto& run : g.runs) {
    const auto& t = run.timing;
    if (t.is_null()) {
      missing = true;
      h += fmt::format("<tr><td>{}</td><td colspan=\"8\">no timing.json</td></tr>\n", escape(run.label));
      continue;
    }
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     escape(run.label), num(number_at(t, "wall_seconds"), 1), num(number_at(t, "attack_seconds"), 1),
                     num(number_at(t, "ddi_seconds"), 1), num(number_at(t, "images_per_second"), 1), num(number_at(t, "threads_per_rank"), 0),
                     num(number_at(t, "ranks"), 0), num(number_at(t, "peak_rss_mb_rank0"), 0),
                     escape(t.value("version", std::string("–"))));
  }
  h += "</table>\n";
  if (missing) h += "<p class=\"note\">Some runs have no timing.json: their times are not shown.</p>\n";
  for (const auto& run : g.runs) {
    h += fmt::format("<details><summary>{}: attack configuration</summary><pre>{}</pre></details>\n", escape(run.label),
                     escape(run.r.config.dump(2)));
  }
  nlohmann::json info = g.info;
  info["version"] = g.runs.front().metrics.value("version", std::string());
  info["model_kind"] = g.runs.front().metrics.value("model_kind", std::string());
  h += fmt::format("<details><summary>model and data</summary><pre>{}</pre></details>\n", escape(info.dump(2)));
  return h;
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

/// The paired statistics of a group: from paired.json beside its runs when it covers them,
/// computed otherwise.
std::vector<PairedStats> paired_of(const Group& g, const ReportOptions& o, std::string& source) {
  std::set<std::string> labels;
  std::set<std::string> dirs;
  for (const auto& run : g.runs) {
    labels.insert(run.label);
    dirs.insert(run.dir.parent_path().string());
  }
  if (dirs.size() == 1) {
    const nlohmann::json j = json_or_null(fs::path(*dirs.begin()) / "paired.json");
    if (j.is_array()) {
      try {
        std::vector<PairedStats> kept;
        for (auto& s : paired_from_json(j)) {
          if (labels.count(s.a) && labels.count(s.b)) kept.push_back(std::move(s));
        }
        if (kept.size() == g.runs.size() * (g.runs.size() - 1)) {  // every pair, both bases
          source = fmt::format("paired.json: {} resamples, seed {}", kept[0].resamples, kept[0].seed);
          return kept;
        }
      } catch (const Error&) {
      }
    }
  }
  std::vector<std::string> names;
  std::vector<const AttackRunResult*> runs;
  for (const auto& run : g.runs) {
    names.push_back(run.label);
    runs.push_back(&run.r);
  }
  BootstrapOptions b;
  b.resamples = o.bootstrap_resamples;
  b.seed = o.bootstrap_seed;
  source = fmt::format("{} resamples, seed {}", b.resamples, b.seed);
  return all_pairs(names, runs, b);
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

}  // namespace

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

std::string report_html(const std::vector<fs::path>& inputs, const ReportOptions& o) {
  if (o.examples < 0) throw Error(fmt::format("--examples must be >= 0 (got {})", o.examples));
  std::vector<Group> groups;
  std::map<std::string, size_t> by_key;
  for (const auto& dir : find_run_folders(inputs)) {
    Run run = load_run(dir);
    // A reproduce folder's regimes are sections of their own: their attacks answer other questions.
    const std::string key = group_key(run.metrics) + "|" + run.regime;
    if (!by_key.count(key)) {
      by_key[key] = groups.size();
      groups.emplace_back();
      for (const char* k : {"model", "data", "split", "offset", "count"}) groups.back().info[k] = run.metrics.value(k, nlohmann::json());
      groups.back().info["regime"] = run.regime;
    }
    groups[by_key[key]].runs.push_back(std::move(run));
  }
  // Labels unique within a group (the same attack from two folders: name them by their parents).
  for (auto& g : groups) {
    std::map<std::string, int> count;
    for (const auto& run : g.runs) count[run.label] += 1;
    for (auto& run : g.runs) {
      if (count[run.label] > 1) run.label = run.dir.parent_path().filename().string() + "/" + run.label;
    }
  }
  size_t runs = 0;
  for (const auto& g : groups) runs += g.runs.size();
  std::string body;
  std::string nav;
  for (size_t i = 0; i < groups.size(); ++i) {
    Group& g = groups[i];
    std::vector<const AttackRunResult*> results;
    std::string names;
    for (const auto& run : g.runs) {
      results.push_back(&run.r);
      names += (names.empty() ? "" : ", ") + run.label;
    }
    const CurveGrid grid = default_grid(results);
    std::string paired_source;
    const auto paired = g.runs.size() > 1 ? paired_of(g, o, paired_source) : std::vector<PairedStats>{};
    const auto eps = eps_curves_of(g);
    Examples e;
    std::string examples;
    if (o.examples > 0) {
      e = prepare_examples(g, o);
      examples = examples_section(g, e);
    } else {
      e.classes = cifar10_classes();
    }
    std::string sections = summary_section(g) + curves_section(g, grid, eps) + paired_section(paired, paired_source) +
                           distribution_section(g, grid) + examples + per_class_section(g, e) + config_section(g);
    std::string notes;
    for (const auto& n : g.notes) notes += "<p class=\"note\">" + escape(n) + "</p>\n";
    const std::string title = group_title(g.info);
    nav += fmt::format("<a href=\"#g{}\">{}</a>", i + 1, escape(title));
    body += fmt::format("<section id=\"g{}\">\n<h2>{}</h2>\n<p class=\"sub\">{} attack{}: {}</p>\n{}{}</section>\n", i + 1,
                        escape(title), g.runs.size(), g.runs.size() == 1 ? "" : "s", escape(names), notes, sections);
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>sdsgsm report</title>\n"
      "<style>{}</style>\n</head>\n<body>\n<main>\n<h1>sdsgsm report</h1>\n<p class=\"sub\">{} run{} in {} group{} "
      "(runs on the same model and images are compared with each other) · written by {}</p>\n<nav>{}</nav>\n{}"
      "</main>\n</body>\n</html>\n",
      kStyle, runs, runs == 1 ? "" : "s", groups.size(), groups.size() == 1 ? "" : "s", escape(version_string()), nav, body);
}

void write_report_html(const fs::path& file, const std::vector<fs::path>& inputs, const ReportOptions& options) {
  write_file_atomic(file, report_html(inputs, options));
}

bool write_folder_report(const fs::path& dir) {
  try {
    write_report_html(dir / "report.html", {dir});
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("report.html not written: {} (rebuild it with `sdsgsm report`)", e.what());
    return false;
  }
}

}  // namespace sdsgsm
