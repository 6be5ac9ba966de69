// What the report knows of `sdsgsm reproduce`'s output (src/report/reproduce_tables.cpp): its
// folder and run names, and the Markdown tables of results.md. The comparison itself
// (reproduce.hpp, src/orchestration/) runs above the report and calls these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdsgsm {

/// A model name or label as one folder name, as reproduce names its run folders:
/// "I-FGSM (early stop)" -> "I_FGSM__early_stop_", "/models/net.pt" -> "_models_net_pt".
std::string reproduce_folder_name(std::string text);

/// A reproduce row's name in curves, pairs and the report: its regime and label
/// ("fixed: I-FGSM (tuned)", "early stop: SD-SGSM (defaults)"; the minimum-norm attacks by label).
std::string reproduce_run_name(const nlohmann::json& row);

// The Markdown of results.md (src/report/reproduce_tables.cpp), from the rows of results.json:
// each an AttackRunResult::report() with "label", "group", "regime" and "config".

/// The results table of some rows.
std::string reproduce_table(const std::vector<const nlohmann::json*>& rows);
/// What each part of SD-SGSM adds, among the tuned attacks; "" when none of them ran. ids[i]: rows[i]'s
/// stable id in reproduce ("fixed/tuned/sdsgsm-fine"); the table picks its rows by those, not by label.
std::string ablation_table(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& ids);
/// The smallest-eps table, from min_eps_summary() objects with "label" and "regime".
std::string min_eps_table(const std::vector<nlohmann::json>& rows, int64_t images);

}  // namespace sdsgsm
