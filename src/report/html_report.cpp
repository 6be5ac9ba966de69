// The HTML report of attack runs: one self-contained page (inline SVG charts and PNG data URIs, an inline
// style sheet, no script, no network), built from run folders alone. Runs on the same model and images form
// a group, compared with each other: summary table, curves, paired statistics, distributions, examples,
// per-class figures, configuration and timings. A reproduce folder's page leads with its findings (html_findings.cpp).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "report/report_internal.hpp"
#include "report/svg.hpp"

namespace sdsgsm {
namespace {

using namespace report_detail;
using svg::escape;

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
table.claims td{text-align:left;vertical-align:top}table.claims td:nth-child(3){font-size:12px}
nav a{margin-right:14px}
)";

// ---------------------------------------------------------------- the sections

std::string summary_section(const Group& g) {
  std::string h =
      "<h3>Summary</h3>\n<p class=\"sub\">Over the images the model classified correctly before the attack. Float: the "
      "adversarials as computed; 8-bit: rounded to 8-bit pixels (as a saved PNG). ASR over those images; distances and "
      "SSIM over the images the attack fools in that form. l2 and l∞ on the [0,1] pixel scale.</p>\n"
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
      "<h3>Paired statistics: {} against each other attack</h3>\n<p class=\"sub\">Per image, over the images both "
      "attacks fool: the mean l2 difference with a percentile bootstrap 95% interval ({}), and how often each "
      "attack's perturbation is the smaller. Green: a is smaller with confidence; orange: b is.</p>\n",
      escape(stats.front().a), escape(source));
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
  if (info.contains("classes") && info["classes"].is_array()) info["classes"] = fmt::format("{} names", info["classes"].size());
  h += fmt::format("<details><summary>model and data</summary><pre>{}</pre></details>\n", escape(info.dump(2)));
  return h;
}

}  // namespace

/// A `sdsgsm robust` folder (robust.json) as a section: the sequence's table, the checks, warnings.
static std::string robust_section(const fs::path& dir, size_t id, std::string& nav) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(dir / "robust.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}' is corrupt ({})", (dir / "robust.json").string(), e.what()));
  }
  try {
    const auto& ro = j.at("robust_options");
    const std::string norm = ro.at("norm").get<std::string>();
    const bool linf = norm == "linf";
    const double eps = ro.at("eps").get<double>();
    const std::string title = fmt::format("Robust accuracy: {} on {} ({} images), {} eps {}", j.value("model", std::string("?")),
                                          j.value("data", std::string("?")), j.at("images").get<int64_t>(),
                                          linf ? "l_inf" : norm, linf ? fmt::format("{:.4g}/255", eps * 255) : fmt::format("{:.4g}", eps));
    nav += fmt::format("<a href=\"#r{}\">{}</a>", id, escape(title));
    std::string h = fmt::format("<section id=\"r{}\">\n<h2>{}</h2>\n", id, escape(title));
    h += fmt::format("<p class=\"sub\">robust accuracy <b>{:.2f}%</b> ({} of {} images), clean {:.2f}%: the per-image worst "
                     "case over the sequence, each attack run on the images still robust</p>\n",
                     100 * j.at("robust_accuracy").get<double>(), j.at("robust").get<int64_t>(), j.at("images").get<int64_t>(),
                     100 * j.at("clean_accuracy").get<double>());
    for (const auto& w : j.at("warnings")) h += fmt::format("<div class=\"warn\">{}</div>\n", escape(w.get<std::string>()));
    h += robust_curve_html(j) + "<table>\n<tr><th>attack</th><th>images attacked</th><th>fooled</th><th>robust accuracy after</th><th>forward passes</th><th>backward passes</th></tr>\n";
    const double n = static_cast<double>(std::max<int64_t>(j.at("images").get<int64_t>(), 1));
    int64_t left = j.at("clean_correct").get<int64_t>();
    for (const auto& a : j.at("attacks")) {
      left -= a.at("fooled").get<int64_t>();
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}%</td><td>{}</td><td>{}</td></tr>\n",
                       escape(a.at("label").get<std::string>()), a.at("attacked").get<int64_t>(), a.at("fooled").get<int64_t>(),
                       100.0 * static_cast<double>(left) / n, a.at("forward_passes").get<int64_t>(), a.at("backward_passes").get<int64_t>());
    }
    h += "</table>\n<h3>Masking checks</h3>\n<table>\n<tr><th>check</th><th>result</th><th>what it measured</th></tr>\n";
    for (const auto& c : j.at("checks")) {
      const std::string verdict = !c.at("ran").get<bool>() ? "not run" : c.at("warned").get<bool>() ? "<b>warning</b>" : "ok";
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(c.at("check").get<std::string>()), verdict,
                       escape(c.at("detail").get<std::string>()));
    }
    h += "</table>\n";
    for (const auto& note : j.at("notes")) h += fmt::format("<p class=\"note\">{}</p>\n", escape(note.get<std::string>()));
    h += fmt::format("<details><summary>Configuration</summary><pre>{}</pre></details>\n</section>\n", escape(ro.dump(2)));
    return h;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}' is not a robust.json of sdsgsm robust ({})", (dir / "robust.json").string(), e.what()));
  }
}

std::string report_html(const std::vector<fs::path>& inputs_in, const ReportOptions& o) {
  if (o.examples < 0) throw Error(fmt::format("--examples must be >= 0 (got {})", o.examples));
  // `sdsgsm robust` folders are sections of their own; the rest are attack runs.
  std::vector<fs::path> inputs, robust_dirs;
  for (const auto& p : inputs_in) (fs::is_regular_file(p / "robust.json") ? robust_dirs : inputs).push_back(p);
  // Those inside a folder of runs too (reproduce's MODEL/robust), two levels down at most.
  for (const auto& p : inputs) {
    std::vector<fs::path> below;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() >= 1) it.disable_recursion_pending();
      if (it->is_directory() && fs::is_regular_file(it->path() / "robust.json")) below.push_back(it->path());
    }
    std::sort(below.begin(), below.end());
    robust_dirs.insert(robust_dirs.end(), below.begin(), below.end());
  }
  std::vector<Group> groups;
  std::map<std::string, size_t> by_key;
  for (const auto& dir : inputs.empty() && !robust_dirs.empty() ? std::vector<fs::path>{} : find_run_folders(inputs)) {
    Run run = load_run(dir);
    // A reproduce folder's regimes are sections of their own: their attacks answer other questions.
    const std::string key = group_key(run.metrics) + "|" + run.regime;
    if (!by_key.count(key)) {
      by_key[key] = groups.size();
      groups.emplace_back();
      for (const char* k : {"model", "data", "split", "offset", "count"}) groups.back().info[k] = run.metrics.value(k, nlohmann::json());
      // How the images were read and named (a run on CIFAR-10 records none of these).
      for (const char* k : {"classes", "classes_file", "resize", "crop"}) {
        if (run.metrics.contains(k)) groups.back().info[k] = run.metrics[k];
      }
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
  // A reproduce folder leads with its findings.
  for (const auto& p : inputs) {
    const std::string findings = findings_section(p);
    if (findings.empty()) continue;
    nav += "<a href=\"#findings\">Findings</a>";
    body += findings;
    break;
  }
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
    const auto paired = paired_of(g, o, paired_source);
    // The charts and distributions show the featured runs; the example images and the per-class
    // figures (the page's weight) fewer.
    auto subset = [&g](size_t limit) {
      Group s = g;
      s.runs.clear();
      for (size_t k : featured_runs(g, limit)) s.runs.push_back(g.runs[k]);
      return s;
    };
    Group shown = subset(kMaxLines), few = subset(kMaxExampleRuns);
    const auto eps = eps_curves_of(shown);
    Examples e;
    std::string examples, per_class;
    // A reproduce folder's other regimes attack the same images: their pictures would repeat the
    // fixed-iteration section's.
    const std::string regime = g.info.value("regime", std::string());
    const bool pictures = regime.empty() || regime == "fixed";
    if (o.examples > 0 && pictures) {
      e = prepare_examples(few, o);
      examples = examples_section(few, e);
      g.notes.insert(g.notes.end(), few.notes.begin(), few.notes.end());
    } else {
      e.classes = info_classes(g.info);
      if (e.classes.empty()) e.classes = default_classes(g);
    }
    if (pictures) {
      per_class = per_class_section(few, e);
    } else {
      g.notes.push_back("The example images and per-class figures of these images are in the fixed-iteration section.");
    }
    if (few.runs.size() < g.runs.size()) {
      g.notes.push_back(fmt::format("The charts and distributions show {} of the {} attacks, the examples and per-class "
                                    "figures {} (the reference {} and the first others); the table above holds every "
                                    "run, and curves.csv and paired.csv beside the runs their curves and statistics.",
                                    shown.runs.size(), g.runs.size(), few.runs.size(), g.runs[reference_of(g)].label));
    }
    std::string sections = summary_section(g) + curves_section(shown, grid, eps) +
                           paired_section(paired, paired_source) + distribution_section(shown, grid) + examples +
                           per_class + config_section(g);
    std::string notes;
    for (const auto& n : g.notes) notes += "<p class=\"note\">" + escape(n) + "</p>\n";
    const std::string title = group_title(g.info);
    nav += fmt::format("<a href=\"#g{}\">{}</a>", i + 1, escape(title));
    body += fmt::format("<section id=\"g{}\">\n<h2>{}</h2>\n<p class=\"sub\">{} attack{}: {}</p>\n{}{}</section>\n", i + 1,
                        escape(title), g.runs.size(), g.runs.size() == 1 ? "" : "s", escape(names), notes, sections);
  }
  for (size_t i = 0; i < robust_dirs.size(); ++i) body += robust_section(robust_dirs[i], i + 1, nav);
  runs += robust_dirs.size();
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
    write_claims(dir);  // a reproduce folder's claims.json and claims.md, which its page shows too
    write_report_html(dir / "report.html", {dir});
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("report.html not written: {} (rebuild it with `sdsgsm report`)", e.what());
    return false;
  }
}

}  // namespace sdsgsm
