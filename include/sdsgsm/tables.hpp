// Tables and sheets of attack runs, for people: the comparison table and the PNG sheet of
// clean | adversarial | perturbation. (samples.csv is AttackRunResult::samples_csv().)
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// Writes a PNG sheet: one row per image, columns clean | adversarial | |delta| amplified.
void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale = 4);

/// A markdown table comparing several runs (ASR, l2, l_inf, SSIM, PSNR, images/s; float and
/// 8-bit), from AttackRunResult::report() objects.
std::string comparison_markdown(const std::vector<nlohmann::json>& reports);

}  // namespace sdsgsm
