// The PNG sheet of a run: clean | adversarial | perturbation amplified, one row per image.
#include "sdsgsm/data.hpp"
#include "sdsgsm/run_folder.hpp"

namespace sdsgsm {

void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale) {
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  auto delta = (adv - clean).to(torch::kFloat32);
  // Perturbation amplified: 0.5 + delta / (2 max|delta|) per image, so its sign and shape show.
  auto amp = delta.abs().flatten(1).amax(1).clamp_min(1e-12).view({n, 1, 1, 1});
  auto pert = (0.5 + delta / (2 * amp)).clamp(0, 1);
  auto row = torch::cat({clean.to(torch::kFloat32), adv.to(torch::kFloat32), pert}, 3);  // n x c x h x 3w
  auto sheet = row.permute({1, 0, 2, 3}).reshape({c, n * h, 3 * w});                        // c x nh x 3w
  if (c == 1) sheet = sheet.expand({3, n * h, 3 * w});
  sheet = sheet.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  write_png(sheet, file);
}

}  // namespace sdsgsm
