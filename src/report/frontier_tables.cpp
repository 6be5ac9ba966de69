// The frontier's Markdown and CSV (evaluation_tables.hpp).
#include <fmt/format.h>

#include "sdsgsm/evaluation_tables.hpp"

namespace sdsgsm {

std::string frontier_markdown(const std::vector<FrontierPoint>& points) {
  std::string md =
      "| attack | setting | passes / image | forward / backward | 8-bit ASR | median 8-bit l2 | mean 8-bit l2 | "
      "median 8-bit SSIM |\n|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& p : points) {
    md += fmt::format("| {} | {} | {:.1f} | {:.1f} / {:.1f} | {:.1f}% ({}/{}) | {:.3f} | {:.3f} | {:.4f} |\n", p.label,
                      p.setting, p.passes, p.forward_passes, p.backward_passes, 100 * p.asr_8bit, p.fooled_8bit, p.scored,
                      p.l2_8bit_median, p.l2_8bit_mean, p.ssim_8bit_median);
  }
  return md;
}

std::string frontier_csv(const std::vector<FrontierPoint>& points) {
  std::string csv =
      "attack,label,passes_mean,forward_passes_mean,backward_passes_mean,asr_8bit,fooled_8bit,scored,l2_8bit_median,"
      "l2_8bit_mean,ssim_8bit_median\n";
  for (const auto& p : points) {
    csv += fmt::format("{},\"{}\",{:.4f},{:.4f},{:.4f},{:.6f},{},{},{:.6f},{:.6f},{:.6f}\n", p.attack, p.label,
                       p.passes, p.forward_passes, p.backward_passes, p.asr_8bit, p.fooled_8bit, p.scored, p.l2_8bit_median,
                       p.l2_8bit_mean, p.ssim_8bit_median);
  }
  return csv;
}

}  // namespace sdsgsm
