// The findings that lead a reproduce folder's report: the paper's claims beside ours, the frontier
// (8-bit l2 against model passes), the strength table of the defended models with their ASR
// against eps, and the transfer matrices as heat maps. Each from the folder's files alone
// (results.json, claims via reproduce_claims, MODEL/curves.json).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "report/report_internal.hpp"
#include "report/svg.hpp"
#include "sdsgsm/attacks.hpp"
#include "sdsgsm/reproduce_tables.hpp"

namespace sdsgsm::report_detail {
namespace {

using svg::escape;

std::string claims_table(const fs::path& dir) {
  const auto claims = reproduce_claims(dir);
  if (claims.empty()) return "";
  std::string h =
      "<h3>The paper's claims and ours</h3>\n<table class=\"claims\"><tr><th>claim</th><th>paper</th><th>ours</th>"
      "<th>verdict</th></tr>\n";
  for (const auto& c : claims) {
    const char* cls = c.verdict == "reproduced" ? "ok" : c.verdict == "not reproduced" ? "bad" : "";
    std::string ours = escape(c.ours.empty() ? "–" : c.ours);
    for (size_t at = ours.find("; "); at != std::string::npos; at = ours.find("; ", at)) ours.replace(at, 2, "<br>");
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\"><b>{}</b></td></tr>\n", escape(c.claim),
                     escape(c.paper), ours, cls, escape(c.verdict));
  }
  h += "</table>\n<details><summary>How each verdict is decided</summary><ul>\n";
  for (const auto& c : claims) h += fmt::format("<li><b>{}</b>: {}</li>\n", escape(c.claim), escape(c.rule));
  return h + "</ul>\n<p class=\"sub\">In claims.json and claims.md beside this page.</p></details>\n";
}

/// One model's frontier: one line per attack (an attack with and without the refinement is one).
std::string frontier_chart(const std::string& model, const nlohmann::json& points) {
  svg::LineChart c;
  c.title = model + ": median 8-bit l2 against passes per image";
  c.x_label = "model passes per image (log10; a gradient step is one)";
  c.y_label = "median l2 of the 8-bit adversarials";
  c.y_min = 0;
  c.width = 560;
  std::map<std::string, size_t> series;
  for (const auto& p : points) {
    const double passes = number_at(p, "passes_mean"), l2 = number_at(p, "l2_8bit_median");
    if (!(passes > 0) || !std::isfinite(l2) || !(number_at(p, "fooled_8bit") > 0)) continue;
    std::string name = p.value("attack", std::string("?"));
    try {
      name = attack_info(name).label;
    } catch (const Error&) {
    }
    if (!series.count(name)) {
      series[name] = c.series.size();
      c.series.push_back({name, {}, {}, false, ""});
    }
    auto& s = c.series[series[name]];
    s.x.push_back(std::log10(passes));
    s.y.push_back(l2);
  }
  return c.series.empty() ? "" : svg::line_chart(c);
}

std::string frontier_rows(const std::string& model, const nlohmann::json& points) {
  std::string rows;
  for (const auto& p : points) {
    rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        escape(model), escape(p.value("label", std::string())), escape(p.value("setting", std::string())),
                        num(number_at(p, "passes_mean"), 1), pct(number_at(p, "asr_8bit")),
                        num(number_at(p, "l2_8bit_median"), 3), num(number_at(p, "ssim_8bit_median"), 4));
  }
  return rows;
}

std::string frontier_part(const nlohmann::json& models) {
  std::string charts, rows;
  for (const auto& [name, entry] : models.items()) {
    if (!entry.is_object() || !entry.contains("frontier") || !entry["frontier"].is_array()) continue;
    charts += frontier_chart(name, entry["frontier"]);
    rows += frontier_rows(name, entry["frontier"]);
  }
  if (charts.empty()) return "";
  return "<h3>The frontier: the saved adversarial's size against its cost</h3>\n<p class=\"sub\">Each attack at several "
         "budgets: the median l2 of its adversarials rounded to 8-bit pixels, over the images they fool, against the "
         "model passes it spent per image (DDI, 8-bit checks and the refinement included). Lower and further left is "
         "better.</p>\n<div class=\"charts\">\n" + charts +
         "</div>\n<details><summary>The frontier's points</summary><table>\n<tr><th>model</th><th>attack</th><th>setting"
         "</th><th>passes / image</th><th>8-bit ASR</th><th>median 8-bit l2</th><th>median 8-bit SSIM</th></tr>\n" +
         rows + "</table></details>\n";
}

/// Curves split into charts of at most kMaxLines lines each, in their order.
std::string eps_charts(const std::string& model, const std::vector<Curve>& curves) {
  std::string out;
  const size_t charts = (curves.size() + kMaxLines - 1) / kMaxLines;
  const size_t per = charts ? (curves.size() + charts - 1) / charts : 0;
  for (size_t k = 0; k < charts; ++k) {
    svg::LineChart c;
    c.title = fmt::format("{}: ASR against eps{}", model, charts > 1 ? fmt::format(" ({} of {})", k + 1, charts) : "");
    c.x_label = "eps (l∞ budget, in 1/255)";
    c.y_label = "attack success rate (float)";
    c.y_percent = true;
    c.y_min = 0;
    c.y_max = 1;
    c.width = 560;
    for (size_t i = k * per; i < std::min(curves.size(), (k + 1) * per); ++i) {
      std::vector<double> x;
      for (double v : curves[i].x) x.push_back(v * 255);
      c.series.push_back({curves[i].attack, x, curves[i].asr, false, ""});
    }
    out += svg::line_chart(c);
  }
  return out;
}

std::string strength_part(const fs::path& dir, const nlohmann::json& models) {
  std::string h;
  for (const auto& [name, entry] : models.items()) {
    if (!entry.is_object() || !entry.contains("robust") || !entry.contains("rows")) continue;
    const auto& robust = entry["robust"];
    h += fmt::format("<h3>Strength on the defended {}</h3>\n", escape(name));
    if (robust.is_object() && robust.contains("robust_accuracy")) {
      std::string seq;
      for (const auto& a : robust.value("attacks", nlohmann::json::array())) seq += (seq.empty() ? "" : ", ") + a.value("label", "");
      h += fmt::format("<p class=\"sub\">Robust accuracy under the ensemble ({}): <b>{:.2f}%</b> ({} of {} images; clean "
                       "{:.2f}%). ASR over the images the model classifies correctly; the lower an attack's ASR, the "
                       "weaker it is against this defence.</p>\n",
                       escape(seq), 100 * robust.value("robust_accuracy", 0.0), robust.value("robust", 0),
                       robust.value("images", 0), 100 * robust.value("clean_accuracy", 0.0));
    }
    h += "<table><tr><th>attack</th><th>ASR</th><th>ASR 8-bit</th><th>l2 8-bit</th><th>SSIM 8-bit</th><th>passes</th></tr>\n";
    for (const auto& r : entry["rows"]) {
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       escape(r.value("label", "")), pct(number_at(r, "float", "asr")), pct(number_at(r, "rounded_8bit", "asr")),
                       num(number_at(r, "rounded_8bit", "l2_mean"), 3), num(number_at(r, "rounded_8bit", "ssim_mean"), 4),
                       num(number_at(r, "passes_mean"), 1));
    }
    h += "</table>\n";
    std::vector<Curve> eps;
    const nlohmann::json cj = json_or_null(dir / reproduce_folder_name(name) / "curves.json");
    try {
      if (cj.is_array()) {
        for (auto& c : curves_from_json(cj)) {
          if (c.curve == "eps" && c.basis == "float") eps.push_back(std::move(c));
        }
      }
    } catch (const Error&) {
    }
    if (!eps.empty()) h += "<div class=\"charts\">\n" + eps_charts(name, eps) + "</div>\n";
  }
  return h;
}

std::string transfer_part(const nlohmann::json& cells) {
  if (!cells.is_array() || cells.empty()) return "";
  std::vector<std::string> attacks, models;
  auto add = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  for (const auto& c : cells) {
    add(attacks, c.value("attack", ""));
    add(models, c.value("source", ""));
    add(models, c.value("target", ""));
  }
  std::string h =
      "<h3>Transfer between models</h3>\n<p class=\"sub\">Transfer ASR (%, float): of the images an attack fooled on "
      "the model it was made on (rows) that the other model (columns) classifies correctly, the share that fool it "
      "too; the diagonal is the white-box ASR. Counts in transfer.md.</p>\n<div class=\"charts\">\n";
  for (const auto& a : attacks) {
    svg::HeatMap m;
    std::string label = a;
    try {
      label = attack_info(a).label;
    } catch (const Error&) {
    }
    m.title = label;
    m.x_label = "target";
    m.y_label = "source";
    m.rows = m.columns = models;
    m.top = 100;
    m.label_zero = true;
    m.cell = 44;
    m.values.assign(models.size(), std::vector<double>(models.size(), 0));
    for (const auto& c : cells) {
      if (c.value("attack", "") != a) continue;
      const auto r = std::find(models.begin(), models.end(), c.value("source", "")) - models.begin();
      const auto k = std::find(models.begin(), models.end(), c.value("target", "")) - models.begin();
      m.values[r][k] = std::round(100 * number_at(c, "asr"));
    }
    h += svg::heat_map(m);
  }
  return h + "</div>\n";
}

}  // namespace

std::string findings_section(const fs::path& dir) {
  const nlohmann::json results = json_or_null(dir / "results.json");
  if (!results.is_object() || !results.contains("models") || !results["models"].is_object()) return "";
  const auto& models = results["models"];
  return "<section id=\"findings\">\n<h2>Findings</h2>\n" + claims_table(dir) + frontier_part(models) +
         strength_part(dir, models) + transfer_part(results.value("transfer", nlohmann::json())) +
         "<p class=\"sub\">The sections below hold every run in detail, by model and regime.</p>\n</section>\n";
}

}  // namespace sdsgsm::report_detail
