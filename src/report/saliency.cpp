#include <fmt/format.h>

#include "sdsgsm/report.hpp"

namespace sdsgsm {

torch::Tensor hot_colormap(const torch::Tensor& v) {
  auto x = v.clamp(0, 1);
  return torch::cat({(3 * x).clamp(0, 1), (3 * x - 1).clamp(0, 1), (3 * x - 2).clamp(0, 1)}, 1);
}

void write_saliency_png(const torch::Tensor& images, const torch::Tensor& s_norm, const torch::Tensor& domain,
                        const fs::path& file, int scale) {
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  auto img = images.to(torch::kFloat32);
  if (img.size(1) == 1) img = img.expand({n, 3, h, w});
  auto heat = hot_colormap(s_norm.to(torch::kFloat32));
  auto overlay = 0.45 * img + 0.55 * heat;
  auto dimmed = torch::where(domain.expand({n, 3, h, w}), img, 0.25 * img);
  auto rows = torch::cat({img, heat, overlay, dimmed}, 3);             // n x 3 x h x 4w
  auto sheet = rows.permute({1, 0, 2, 3}).reshape({3, n * h, 4 * w});  // 3 x nh x 4w
  sheet = sheet.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  write_png(sheet, file);
}

}  // namespace sdsgsm
