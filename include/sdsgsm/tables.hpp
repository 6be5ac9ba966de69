// The comparison table of attack runs, for people (the PNG sheet of every run folder is
// write_sheet_png, run_folder.hpp; samples.csv is AttackRunResult::samples_csv()).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// A markdown table comparing several runs (ASR, l2, l_inf, SSIM, PSNR, images/s; float and
/// 8-bit), from AttackRunResult::report() objects.
std::string comparison_markdown(const std::vector<nlohmann::json>& reports);

}  // namespace sdsgsm
