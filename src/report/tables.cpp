// Markdown tables of attack runs.
#include <cmath>

#include <fmt/format.h>

#include "sdsgsm/run_result.hpp"
#include "sdsgsm/tables.hpp"

namespace sdsgsm {

std::string comparison_markdown(const std::vector<nlohmann::json>& reports) {
  std::string out =
      "| attack | ASR | l2 mean | l2 median | l_inf | l_0 | SSIM | PSNR (dB) | ASR 8-bit | l2 8-bit | SSIM 8-bit | "
      "iters | img/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : reports) {
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    auto v = [](const nlohmann::json& j, const char* key, const char* format, double scale = 1) {
      return figure_or_na(j.contains(key) && j[key].is_number() ? scale * j[key].get<double>() : NAN, format);
    };
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0f} |\n",
                       s.value("label", s["attack"].get<std::string>()), v(f, "asr", "{:.2f}%", 100), v(f, "l2_mean", "{:.3f}"),
                       v(f, "l2_median", "{:.3f}"), v(f, "linf_max", "{:.4f}"), v(f, "l0_mean", "{:.3f}"),
                       v(f, "ssim_mean", "{:.4f}"), v(f, "psnr_mean", "{:.2f}"), v(q, "asr", "{:.2f}%", 100),
                       v(q, "l2_mean", "{:.3f}"), v(q, "ssim_mean", "{:.4f}"), v(s, "iterations_mean", "{:.2f}"),
                       s.value("images_per_second", 0.0));
  }
  out += "\nDistances and SSIM over the images each attack fools (8-bit: once rounded to 8-bit pixels, over the "
         "images that still fool).\n";
  return out;
}

std::string comparison_heading(const std::string& model, int64_t images, const std::string& source, double eps,
                               const std::string& steps, const std::optional<bool>& early_stop) {
  return fmt::format("{} on {} images of {} (eps {:.5f}, {} steps, early stop {}):\n\n", model, images, source, eps,
                     steps, early_stop ? (*early_stop ? "on" : "off") : "per attack");
}

}  // namespace sdsgsm
