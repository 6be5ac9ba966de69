// The files of a finished `sdsgsm robust` evaluation (the formatting of sdsgsm/robust_result.hpp).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sdsgsm/core.hpp"
#include "sdsgsm/robust_result.hpp"

namespace sdsgsm {

/// What a leaderboard entry needs, in one object (robust.json's `card`): model, model_md5 (when
/// `info` has it), the program's version, threat model and eps, the version of the ensemble that
/// ran, images, clean and robust accuracy, and each check's outcome ("ok", "warning", "not run").
nlohmann::json robust_card(const nlohmann::json& info, const nlohmann::json& options, const RobustResult& result);

/// Writes a finished evaluation into `dir` (the `work` it ran with): robust.json (`info`, the
/// options `options` as RobustOptions::to_json gives them, the card and every figure), robust.csv
/// and robust.md (`title`), and removes the per-batch files.
void write_robust_files(const fs::path& dir, nlohmann::json info, const nlohmann::json& options,
                        const RobustResult& result, const std::string& title);

}  // namespace sdsgsm
