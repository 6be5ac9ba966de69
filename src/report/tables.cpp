// Markdown tables of attack runs.
#include <fmt/format.h>

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
    out += fmt::format("| {} | {:.2f}% | {:.3f} | {:.3f} | {:.4f} | {:.3f} | {:.4f} | {:.2f} | {:.2f}% | {:.3f} | {:.4f} | "
                       "{:.2f} | {:.0f} |\n",
                       s.value("label", s["attack"].get<std::string>()), 100 * f["asr"].get<double>(),
                       f["l2_mean"].get<double>(), f["l2_median"].get<double>(), f["linf_max"].get<double>(),
                       f["l0_mean"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                       100 * q["asr"].get<double>(), q["l2_mean"].get<double>(), q["ssim_mean"].get<double>(),
                       s["iterations_mean"].get<double>(), s.value("images_per_second", 0.0));
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
