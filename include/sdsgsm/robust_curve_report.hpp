// The files of a robust-accuracy curve over eps (the formatting of sdsgsm/robust_curve.hpp):
// robust.json with its `curve` array, robust_curve.csv, robust.csv, robust.md and the report's chart.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sdsgsm/robust_curve.hpp"

namespace sdsgsm {

/// robust.json's `curve`: per radius eps, robust_accuracy, robust, fooled (per attack name),
/// attacked (per attack name) and seconds.
nlohmann::json robust_curve_json(const RobustCurve& curve);

/// The model card of a curve (robust_card, at the largest radius: `options`' eps) with `curve`: per
/// radius eps and robust_accuracy.
nlohmann::json robust_curve_card(const nlohmann::json& info, const nlohmann::json& options, const RobustCurve& curve);

/// robust_curve.csv: eps,eps_255,robust_accuracy,robust, one fooled_ATTACK column per attack, seconds.
std::string robust_curve_csv(const RobustCurve& curve);

/// The curve's Markdown table (robust.md's first part; the largest radius's sequence table follows).
std::string robust_curve_table(const RobustCurve& curve, Norm norm, const std::string& title);

/// Writes a finished curve into `dir` (the `work` it ran with): robust.json (`info`, the options
/// `options` with `eps` the largest radius and `eps_list` every radius, the largest radius's figures
/// as a single run gives them, and `curve`), robust.csv (per image also the first radius that
/// fooled it), robust_curve.csv and robust.md; removes the per-batch files.
void write_robust_curve_files(const fs::path& dir, nlohmann::json info, nlohmann::json options,
                              const RobustCurve& curve, Norm norm, const std::string& title);

/// The report's part for a robust.json with a `curve`: a chart of robust accuracy against eps and
/// its table (HTML); "" for a robust.json of one radius.
std::string robust_curve_html(const nlohmann::json& robust_json);

}  // namespace sdsgsm
