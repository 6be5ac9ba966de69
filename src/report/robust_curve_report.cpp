// The files of a robust-accuracy curve over eps (sdsgsm/robust_curve_report.hpp): robust.json's
// `curve`, robust_curve.csv, robust.csv, robust.md, and the report's chart.
#include "sdsgsm/robust_curve_report.hpp"

#include <fmt/format.h>

#include "report/svg.hpp"
#include "sdsgsm/robust_report.hpp"

namespace sdsgsm {
namespace {

std::string eps_label(double eps, Norm norm) {
  return norm == Norm::Linf ? fmt::format("{:.4g}/255", eps * 255) : fmt::format("{:.4g}", eps);
}

}  // namespace

nlohmann::json robust_curve_json(const RobustCurve& curve) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t k = 0; k < curve.points.size(); ++k) {
    const RobustCurvePoint& p = curve.points[k];
    nlohmann::json fooled = nlohmann::json::object(), attacked = nlohmann::json::object();
    for (const auto& s : p.stages) {
      fooled[s.attack] = s.fooled;
      attacked[s.attack] = s.attacked;
    }
    out.push_back({{"eps", p.eps},
                   {"robust_accuracy", curve.robust_accuracy(k)},
                   {"robust", p.robust},
                   {"fooled", fooled},
                   {"attacked", attacked},
                   {"seconds", p.seconds}});
  }
  return out;
}

nlohmann::json robust_curve_card(const nlohmann::json& info, const nlohmann::json& options, const RobustCurve& curve) {
  nlohmann::json card = robust_card(info, options, curve.result);
  card["curve"] = nlohmann::json::array();
  for (size_t k = 0; k < curve.points.size(); ++k) {
    card["curve"].push_back({{"eps", curve.points[k].eps}, {"robust_accuracy", curve.robust_accuracy(k)}});
  }
  return card;
}

std::string robust_curve_csv(const RobustCurve& curve) {
  std::string out = "eps,eps_255,robust_accuracy,robust";
  if (!curve.points.empty()) {
    for (const auto& s : curve.points.front().stages) out += ",fooled_" + s.attack;
  }
  out += ",seconds\n";
  for (size_t k = 0; k < curve.points.size(); ++k) {
    const RobustCurvePoint& p = curve.points[k];
    out += fmt::format("{:.9g},{:.6g},{:.6f},{}", p.eps, p.eps * 255, curve.robust_accuracy(k), p.robust);
    for (const auto& s : p.stages) out += fmt::format(",{}", s.fooled);
    out += fmt::format(",{:.3f}\n", p.seconds);
  }
  return out;
}

std::string robust_curve_table(const RobustCurve& curve, Norm norm, const std::string& title) {
  std::string t = fmt::format("{}\n\n| eps | robust accuracy | robust images |", title);
  std::string rule = "|---|---:|---:|";
  if (!curve.points.empty()) {
    for (const auto& s : curve.points.front().stages) {
      t += fmt::format(" fooled by {} |", s.label);
      rule += "---:|";
    }
  }
  t += " seconds |\n" + rule + "---:|\n";
  for (size_t k = 0; k < curve.points.size(); ++k) {
    const RobustCurvePoint& p = curve.points[k];
    t += fmt::format("| {} | {:.2f}% | {} |", eps_label(p.eps, norm), 100 * curve.robust_accuracy(k), p.robust);
    for (const auto& s : p.stages) t += fmt::format(" {} |", s.fooled);
    t += fmt::format(" {:.1f} |\n", p.seconds);
  }
  t += fmt::format("\nclean accuracy {:.2f}% ({} of {} images). Each radius attacks only the images still robust at the "
                   "one before it; \"fooled by\" counts the images an attack fooled at that radius.\n",
                   100 * curve.result.clean_accuracy(), curve.result.clean_correct, curve.result.images);
  return t;
}

void write_robust_curve_files(const fs::path& dir, nlohmann::json info, nlohmann::json options,
                              const RobustCurve& curve, Norm norm, const std::string& title) {
  const RobustResult& r = curve.result;
  nlohmann::json radii = nlohmann::json::array();
  for (const auto& p : curve.points) radii.push_back(p.eps);
  options["eps"] = curve.points.back().eps;
  options["eps_list"] = radii;
  info["card"] = robust_curve_card(info, options, curve);
  info["robust_options"] = options;
  info.update(r.to_json());
  info["curve"] = robust_curve_json(curve);
  std::string csv = "index,label,clean_pred,fooled_by,fooled_at_eps\n";
  const int64_t stages_n = static_cast<int64_t>(r.stages.size()), radii_n = static_cast<int64_t>(curve.points.size());
  for (int64_t i = 0; i < r.images; ++i) {
    const int64_t f = r.fooled_by[i].item<int64_t>(), at = curve.fooled_at[i].item<int64_t>();
    const std::string by = f < 0 ? "clean" : f >= stages_n ? "robust" : r.stages[f].attack;
    const std::string where = at < 0 || at >= radii_n ? "" : fmt::format("{:.9g}", curve.points[at].eps);
    csv += fmt::format("{},{},{},{},{}\n", r.index[i].item<int64_t>(), r.label[i].item<int64_t>(),
                       r.clean_pred[i].item<int64_t>(), by, where);
  }
  const std::string last = fmt::format("At {} (each attack's counts summed over the radii):", eps_label(curve.points.back().eps, norm));
  write_file_atomic(dir / "robust.json", info.dump(2) + "\n");
  write_file_atomic(dir / "robust.csv", csv);
  write_file_atomic(dir / "robust_curve.csv", robust_curve_csv(curve));
  write_file_atomic(dir / "robust.md", robust_curve_table(curve, norm, title) + "\n" + r.table(last));
  fs::remove_all(dir / "curve");
  fs::remove(dir / "checks.json");
}

std::string robust_curve_html(const nlohmann::json& j) {
  if (!j.contains("curve") || !j["curve"].is_array() || j["curve"].empty()) return "";
  const std::string norm = j.at("robust_options").value("norm", std::string("linf"));  // linf, l2, l1
  const bool linf = norm == "linf";
  svg::LineChart c;
  c.title = "Robust accuracy against eps";
  c.x_label = linf ? "eps (l∞ radius, in 1/255)" : fmt::format("eps ({} radius)", norm);
  c.y_label = "robust accuracy";
  c.y_percent = true;
  c.y_min = 0;
  c.y_max = 1;
  c.x_min = 0;
  svg::Series s;
  s.name = "robust accuracy";
  std::string rows;
  for (const auto& p : j["curve"]) {
    const double eps = p.at("eps").get<double>(), acc = p.at("robust_accuracy").get<double>();
    s.x.push_back(linf ? eps * 255 : eps);
    s.y.push_back(acc);
    rows += fmt::format("<tr><td>{}</td><td>{:.2f}%</td><td>{}</td><td>{:.1f}</td></tr>\n",
                        linf ? fmt::format("{:.4g}/255", eps * 255) : fmt::format("{:.4g}", eps), 100 * acc,
                        p.at("robust").get<int64_t>(), p.at("seconds").get<double>());
  }
  c.series.push_back(s);
  return "<h3>Robust accuracy against eps</h3>\n<p class=\"sub\">Each radius attacks only the images still robust at the one "
         "before it; the table below the chart is the largest radius's, each attack's counts summed over the radii.</p>\n"
         "<div class=\"charts\">\n" + svg::line_chart(c) + "</div>\n<table>\n<tr><th>eps</th><th>robust accuracy</th>"
         "<th>robust images</th><th>seconds</th></tr>\n" + rows + "</table>\n";
}

}  // namespace sdsgsm
