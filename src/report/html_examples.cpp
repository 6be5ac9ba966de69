// The HTML report's example images (clean, adversarial, perturbation, SD-SGSM's allocation map and
// sensitivity) and per-class figures, with the small HTML helpers the sections share.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "report/report_internal.hpp"
#include "report/svg.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm::report_detail {

using svg::escape;

namespace {

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


std::string class_name(const Examples& e, int64_t k) {
  return k >= 0 && k < static_cast<int64_t>(e.classes.size()) ? e.classes[k] : fmt::format("class {}", k);
}


}  // namespace

std::vector<std::string> info_classes(const nlohmann::json& info) {
  std::vector<std::string> out;
  if (info.is_object() && info.contains("classes") && info["classes"].is_array()) {
    for (const auto& c : info["classes"]) out.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  }
  return out;
}

std::vector<std::string> default_classes(const Group& g) {
  // A run records its class names unless they are CIFAR-10's (record_data_flags); runs with labels
  // beyond CIFAR-10's ten (or runs written before) without names show "class k".
  int64_t top = -1;
  for (const auto& run : g.runs) {
    if (run.r.size() > 0) top = std::max({top, run.r.label.max().item<int64_t>(), run.r.adv_pred.max().item<int64_t>()});
  }
  return top < 10 ? cifar10_classes() : std::vector<std::string>{};
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
    // Read as the run read it: sizes and class names from its info (record_data_flags).
    DataOptions options;
    options.resize = g.info.value("resize", int64_t{0});
    options.crop = g.info.value("crop", int64_t{0});
    const std::string classes_file = g.info.value("classes_file", std::string());
    if (!classes_file.empty() && fs::is_regular_file(classes_file)) {
      options.classes = read_class_names(classes_file);
      options.classes_given = true;
    } else {
      options.classes.names = info_classes(g.info);
    }
    auto source = open_image_source(data, split == "train" ? Split::Train : Split::Test, g.info.value("offset", int64_t{0}),
                                    g.info.value("count", int64_t{-1}), options);
    e.classes = source->classes();
    std::vector<torch::Tensor> parts;
    for (int64_t row : e.rows) parts.push_back(source->float_images(row, 1));
    if (!parts.empty()) e.clean = torch::cat(parts);
  } catch (const std::exception& ex) {
    g.notes.push_back(fmt::format("The images of '{}' cannot be read ({}): the examples show the adversarials only, without "
                                  "perturbation or maps. Run the report from the folder the attack ran in.",
                                  data, ex.what()));
  }
  if (!info_classes(g.info).empty()) e.classes = info_classes(g.info);
  if (e.classes.empty()) e.classes = default_classes(g);
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
    // The attacks that spend the budget by a DDI map: the registry says which (a run of an attack
    // this version does not know has none).
    bool allocation = false;
    try {
      allocation = attack_info(run.r.config.value("attack", std::string())).has(kDdiMap);
    } catch (const Error&) {
    }
    if (e.model) {
      torch::NoGradGuard no_grad;
      auto p = torch::softmax(e.model->forward(adv), 1);
      conf = p.gather(1, run.r.adv_pred.index_select(0, rows).view({-1, 1}).clamp(0, p.size(1) - 1)).view(-1);
      if (allocation && clean) {
        try {
          auto sd = SdsgsmOptions::from_json(run.r.config);
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

namespace {

/// Per class with many classes (ImageNet's 1000): per attack, the classes with the highest ASR
/// and the most frequent (true -> adversarial prediction) pairs, instead of a K-column table and a
/// K x K heat map.
std::string many_classes_section(const Group& g, const Examples& e, int64_t classes) {
  constexpr int64_t kTop = 15;
  std::string h = fmt::format(
      "<h3>Per class</h3>\n<p class=\"sub\">{} classes: too many for a table and a heat map. Per attack, over the "
      "correctly classified images: the {} classes with the highest ASR (float; among those with images), and the {} most "
      "frequent moves of a fooled image from its true class to the adversarial prediction.</p>\n",
      classes, kTop, kTop);
  for (const auto& run : g.runs) {
    auto counted = counted_samples(run.r);
    auto labels = run.r.label.index({counted}), preds = run.r.adv_pred.index({counted});
    auto fooled = run.r.success.index({counted});
    std::map<int64_t, std::pair<int64_t, int64_t>> per;  // class -> (images, fooled)
    std::map<std::pair<int64_t, int64_t>, int64_t> moves;
    for (int64_t i = 0; i < labels.size(0); ++i) {
      const int64_t y = labels[i].item<int64_t>();
      const bool f = fooled[i].item<bool>();
      auto& c = per[y];
      c.first += 1;
      c.second += f ? 1 : 0;
      if (f) moves[{y, preds[i].item<int64_t>()}] += 1;
    }
    std::vector<std::pair<int64_t, std::pair<int64_t, int64_t>>> rows(per.begin(), per.end());
    // Highest ASR first; ties: more images first, then class index.
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      const auto l = a.second.second * b.second.first, r = b.second.second * a.second.first;
      return l != r ? l > r : a.second.first > b.second.first;
    });
    h += fmt::format("<h4>{}</h4>\n<div class=\"charts\">\n<table><tr><th>class</th><th>images</th><th>ASR</th></tr>\n",
                     escape(run.label));
    for (size_t k = 0; k < rows.size() && static_cast<int64_t>(k) < kTop; ++k) {
      const auto& [c, nf] = rows[k];
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(class_name(e, c)), nf.first,
                       pct(static_cast<double>(nf.second) / nf.first));
    }
    h += fmt::format("</table>\n<table><tr><th>true class</th><th>adversarial prediction</th><th>images</th></tr>\n");
    std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> pairs(moves.begin(), moves.end());
    std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    for (size_t k = 0; k < pairs.size() && static_cast<int64_t>(k) < kTop; ++k) {
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(class_name(e, pairs[k].first.first)),
                       escape(class_name(e, pairs[k].first.second)), pairs[k].second);
    }
    if (pairs.empty()) h += "<tr><td colspan=\"3\">no image fooled</td></tr>\n";
    h += fmt::format("</table>\n</div>\n<p class=\"sub\">{} of {} classes hold images; {} distinct moves.</p>\n",
                     per.size(), classes, moves.size());
  }
  return h;
}

}  // namespace

std::string per_class_section(const Group& g, const Examples& e) {
  int64_t classes = static_cast<int64_t>(e.classes.size());
  for (const auto& run : g.runs) {
    if (run.r.size() > 0) {
      classes = std::max({classes, run.r.label.max().item<int64_t>() + 1, run.r.adv_pred.max().item<int64_t>() + 1});
    }
  }
  if (classes > kMaxClassesInTable) return many_classes_section(g, e, classes);
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

}  // namespace sdsgsm::report_detail
