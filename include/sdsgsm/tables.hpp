// The comparison table of attack runs, for people (the PNG sheet of every run folder is
// write_sheet_png, run_folder.hpp; samples.csv is AttackRunResult::samples_csv()).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// A markdown table comparing several runs (ASR, l2, l_inf, SSIM, PSNR, images/s; float and
/// 8-bit), from AttackRunResult::report() objects.
std::string comparison_markdown(const std::vector<nlohmann::json>& reports);

/// compare.md's first line: the model, the images, eps, the steps ("10", "each attack's own") and
/// early stop (on, off, or per attack when unset).
std::string comparison_heading(const std::string& model, int64_t images, const std::string& source, double eps,
                               const std::string& steps, const std::optional<bool>& early_stop);

}  // namespace sdsgsm
