// What the report knows of `sdsgsm reproduce`'s output: its folder and run names, and the Markdown
// tables of results.md (the results per regime, the ablation and the smallest eps per image).
#include <cctype>
#include <tuple>

#include <fmt/format.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/reproduce_tables.hpp"

namespace sdsgsm {

std::string reproduce_folder_name(std::string text) {
  for (char& c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return text;
}

std::string reproduce_run_name(const nlohmann::json& row) {
  const std::string regime = row.value("regime", std::string());
  const std::string label = row.at("label").get<std::string>();
  for (const Regime& r : budget_regimes()) {
    if (regime == r.key) return r.run_name(label);
  }
  return label;
}

std::string reproduce_table(const std::vector<const nlohmann::json*>& rows) {
  // Distances over the images fooled in that form: float figures over the float successes,
  // 8-bit figures over the 8-bit successes.
  std::string out =
      "| group | attack | ASR | l2 | l_inf | SSIM | PSNR (dB) | ASR 8-bit | l2 8-bit | l2 8-bit median | SSIM 8-bit | "
      "iters | passes | img/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto* sp : rows) {
    const auto& s = *sp;
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    out += fmt::format("| {} | {} | {:.2f}% | {:.3f} | {:.4f} | {:.4f} | {:.2f} | {:.2f}% | {:.3f} | {:.3f} | {:.4f} | "
                       "{:.2f} | {:.1f} | {:.0f} |\n",
                       s["group"].get<std::string>(), s["label"].get<std::string>(), 100 * f["asr"].get<double>(),
                       f["l2_mean"].get<double>(), f["linf_max"].get<double>(), f["ssim_mean"].get<double>(),
                       f["psnr_mean"].get<double>(), 100 * q["asr"].get<double>(), q["l2_mean"].get<double>(),
                       q.value("l2_median", 0.0), q["ssim_mean"].get<double>(), s["iterations_mean"].get<double>(),
                       s.value("passes_mean", 0.0), s["images_per_second"].get<double>());
  }
  out += "\nl2, l_inf, SSIM, PSNR: means over the images the attack fools; 8-bit: its adversarials rounded to 8-bit "
         "pixels, over the images they still fool. passes: model passes per image (a gradient step is one; DDI's windows and 8-bit checks count one each; DeepFool's per-class gradients one each).\n";
  return out;
}

/// What each part of SD-SGSM adds, among the tuned attacks (uniform map + sign is tuned I-FGSM).
std::string ablation_table(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& ids) {
  // By tuning key (tuning_plan()), in the ablation's order.
  const std::vector<std::tuple<std::string, std::string, std::string>> order = {
      {kIfgsm, "uniform", "sign"},
      {kSdIfgsm, "DDI, k 16 s 16 (4 windows)", "sign"},
      {kSgsm, "uniform", "tanh"},
      {kSdsgsm, "DDI, k 16 s 16 (4 windows)", "tanh"},
      {std::string(kSdsgsm) + "-fine", "DDI, k 4 s 2 (225 windows)", "tanh"}};
  std::string out =
      "### Ablation (tuned attacks)\n\n| regime | variant | allocation M | direction | ASR | ASR 8-bit | l2 | l2 8-bit | "
      "SSIM | iters |\n|---|---|---|---|---|---|---|---|---|---|\n";
  bool any = false;
  for (const Regime& regime : budget_regimes()) {
    for (const auto& [key, m, dir] : order) {
      for (size_t i = 0; i < rows.size() && i < ids.size(); ++i) {
        if (ids[i] != std::string(regime.key) + "/tuned/" + key) continue;
        const auto& s = rows[i];
        const std::string label = s["label"].get<std::string>();
        any = true;
        out += fmt::format("| {} | {} | {} | {} | {:.2f}% | {:.2f}% | {:.3f} | {:.3f} | {:.4f} | {:.2f} |\n",
                           regime.name, label, m, dir,
                           100 * s["float"]["asr"].get<double>(), 100 * s["rounded_8bit"]["asr"].get<double>(),
                           s["float"]["l2_mean"].get<double>(), s["rounded_8bit"]["l2_mean"].get<double>(),
                           s["float"]["ssim_mean"].get<double>(), s["iterations_mean"].get<double>());
      }
    }
  }
  return any ? out + "\n" : "";
}

std::string min_eps_table(const std::vector<nlohmann::json>& rows, int64_t images) {
  std::string md = fmt::format(
      "### Smallest eps per image (early stop; first {} images, bisection to eps/32)\n\n"
      "| attack | median eps (x 1/255) | mean eps (x 1/255) | fooled within eps |\n|---|---|---|---|\n",
      images);
  for (const auto& m : rows) {
    md += fmt::format("| {} | {} | {} | {:.2f}% |\n", m["label"].get<std::string>(),
                      m["median"].is_null() ? std::string("-") : fmt::format("{:.2f}", m["median_255"].get<double>()),
                      m["mean"].is_null() ? std::string("-") : fmt::format("{:.2f}", m["mean_255"].get<double>()),
                      100 * m["fooled_within_eps_max"].get<double>());
  }
  return md + "\n";
}

}  // namespace sdsgsm
