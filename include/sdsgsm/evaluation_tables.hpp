// The tables of evaluation's results, as people and other tools read them: the sweep's and the
// tuning's Markdown (sweep.md, tuning.md), the frontier's Markdown and CSV, the transfer matrices.
// Evaluation computes these results (sweep.hpp, tuning.hpp, frontier.hpp, transfer.hpp); the
// report formats them here (src/report/sweep_tables.cpp, frontier_tables.cpp, transfer_tables.cpp).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/frontier.hpp"
#include "sdsgsm/sweep.hpp"
#include "sdsgsm/transfer.hpp"

namespace sdsgsm {

/// The sweep's report: the DDI cost per window grid, the chosen settings, and every row sorted
/// by the rule, as markdown.
std::string sweep_markdown(const std::vector<SweepRow>& rows, const std::string& command,
                           const std::string& asr_basis = "both");

/// tuning.md: per regime, the chosen settings of every attack and its tuning-split figures, then
/// each attack's rows in the rule's order (the `run_tuning` JSON, tuning.hpp).
std::string tuning_markdown(const nlohmann::json& tuned, const std::string& command);

/// The frontier as a Markdown table, by attack and budget.
std::string frontier_markdown(const std::vector<FrontierPoint>& points);

/// frontier.csv content.
std::string frontier_csv(const std::vector<FrontierPoint>& points);

/// The transfer matrices as markdown: one table per attack, sources as rows, targets as columns.
std::string transfer_tables(const std::vector<TransferCell>& cells);

}  // namespace sdsgsm
