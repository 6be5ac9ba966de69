// The sweep's and the tuning's Markdown (evaluation_tables.hpp).
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/tuning.hpp"

namespace sdsgsm {
namespace {

double ssim_of(const SweepRow& r) { return r.summary["float"]["ssim_mean"].get<double>(); }
double l2_of(const SweepRow& r) { return r.summary["float"]["l2_mean"].get<double>(); }

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string sweep_markdown(const std::vector<SweepRow>& rows, const std::string& command, const std::string& asr_basis) {
  std::string md = fmt::format("# {} tuning sweep\n\nCommand: `{}`\n\n",
                               rows.empty() || is_sdsgsm_family(rows.front().variant) ? "SD-SGSM" : rows.front().variant,
                               command);
  if (rows.empty()) return md + "No configurations.\n";
  const auto& s0 = rows.front().summary;
  md += fmt::format("{} images ({} classified correctly, {} attacked).\n\n", s0["images"].get<int64_t>(),
                    s0["clean_correct"].get<int64_t>(), s0["attacked"].get<int64_t>());
  md += fmt::format("Rule: ASR >= 99.9% on these images ({}), then the highest mean SSIM (ties: lower l2).\n\n",
                    asr_basis == "both" ? "float and 8-bit rounded" : asr_basis == "8bit" ? "8-bit rounded" : "float");
  for (bool cost : {false, true}) {
    int64_t c = choose_row(rows, cost);
    md += fmt::format("- **Chosen{}**: {}\n", cost ? " with DDI <= attack iterations" : "",
                      c < 0 ? std::string("none meets the ASR bound")
                            : fmt::format("{}: ASR {:.2f}% (8-bit {:.2f}%), SSIM {:.4f}, l2 {:.3f}", rows[c].describe(),
                                          100 * rows[c].summary["float"]["asr"].get<double>(),
                                          100 * rows[c].summary["rounded_8bit"]["asr"].get<double>(), ssim_of(rows[c]),
                                          l2_of(rows[c])));
  }
  std::map<std::pair<int64_t, int64_t>, const SweepRow*> grids;
  for (const auto& r : rows) {
    if (r.windows > 0) grids.emplace(std::make_pair(r.sd.ddi.window, r.sd.ddi.stride), &r);
  }
  if (!grids.empty()) md += "\n## DDI cost per window grid\n\n| k | s | windows | DDI s |\n|---|---|---|---|\n";
  for (const auto& [key, r] : grids) {
    md += fmt::format("| {} | {} | {} | {:.1f} |\n", key.first, key.second, r->windows, r->ddi_seconds);
  }
  md += "\n## Every configuration, in the rule's order\n\n"
        "| k | s | map | rho | lambda | beta | step f. | decay | ASR | ASR 8-bit | l2 | SSIM | PSNR | iters | "
        "iter s | DDI <= iter |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i : rule_order(rows)) {
    const auto& r = rows[i];
    const auto& f = r.summary["float"];
    const bool ddi = r.windows > 0;
    auto shown = [ddi](const auto& v) { return ddi ? fmt::format("{}", v) : std::string("-"); };
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {:.2f}% | {:.2f}% | {:.3f} | {:.4f} | {:.2f} | {:.2f} | "
                      "{:.1f} | {} |\n",
                      shown(r.sd.ddi.window), shown(r.sd.ddi.stride), ddi ? r.sd.map : std::string("uniform"),
                      ddi && r.sd.map != "soft" ? fmt::format("{}", r.sd.rho) : std::string("-"), shown(r.sd.lambda),
                      is_sdsgsm_family(r.variant) ? fmt::format("{}", r.sd.beta) : std::string("-"), r.sd.step_factor,
                      r.decay, 100 * f["asr"].get<double>(), 100 * r.summary["rounded_8bit"]["asr"].get<double>(),
                      f["l2_mean"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                      r.summary["iterations_mean"].get<double>(), r.iteration_seconds,
                      r.ddi_within_iterations ? "yes" : "no");
  }
  return md;
}

std::string tuning_markdown(const nlohmann::json& tuned, const std::string& command) {
  std::string md = fmt::format(
      "# Tuning every attack by one rule\n\nCommand: `{}`\n\nRule: ASR >= 99.9% on the tuning images, float and after "
      "rounding to 8-bit pixels, then the highest mean SSIM (ties: lower l2). Every attack: the same images, eps and "
      "iterations; alpha = eps / steps x step factor. Regimes: **fixed** (all steps) and **early stop** (a sample stops "
      "at its first success that survives 8-bit rounding).\n\n",
      command);
  const auto plan = tuning_plan();
  const nlohmann::json none = nlohmann::json::object();
  const auto& regimes = tuned.contains("regimes") ? tuned["regimes"] : none;
  for (const auto& regime : tuning_regimes()) {
    if (!regimes.contains(regime)) continue;
    const auto& chosen = regimes[regime];
    md += fmt::format("## {}\n\n| attack | chosen | ASR | ASR 8-bit | l2 | SSIM | iters | configurations |\n"
                      "|---|---|---|---|---|---|---|---|\n",
                      regime_of(regime).title);
    for (const auto& item : plan) {
      if (!chosen.contains(item.key)) continue;
      const auto& rows = tuned["rows"][regime][item.key];
      const auto& c = chosen[item.key];
      if (c.is_null()) {
        md += fmt::format("| {} | none meets the ASR bound | | | | | | {} |\n", item.label, rows.size());
        continue;
      }
      const auto& s = c["summary"];
      md += fmt::format("| {} | {} | {:.2f}% | {:.2f}% | {:.3f} | {:.4f} | {:.2f} | {} |\n", item.label,
                        SweepRow::from_json(c).describe(), 100 * s["float"]["asr"].get<double>(),
                        100 * s["rounded_8bit"]["asr"].get<double>(), s["float"]["l2_mean"].get<double>(),
                        s["float"]["ssim_mean"].get<double>(), s["iterations_mean"].get<double>(), rows.size());
    }
    md += "\n";
  }
  md += "## Every configuration\n\n";
  const auto& all_rows = tuned.contains("rows") ? tuned["rows"] : none;
  for (const auto& regime : tuning_regimes()) {
    if (!all_rows.contains(regime)) continue;
    const auto& by_key = all_rows[regime];
    for (const auto& item : plan) {
      if (!by_key.contains(item.key)) continue;
      md += fmt::format("### {}, {}\n\n| settings | ASR | ASR 8-bit | l2 | SSIM | iters |\n|---|---|---|---|---|---|\n",
                        item.label, lowercase(regime_of(regime).title));
      for (const auto& r : by_key[item.key]) {
        const auto& s = r["summary"];
        md += fmt::format("| {} | {:.2f}% | {:.2f}% | {:.3f} | {:.4f} | {:.2f} |\n", SweepRow::from_json(r).describe(),
                          100 * s["float"]["asr"].get<double>(), 100 * s["rounded_8bit"]["asr"].get<double>(),
                          s["float"]["l2_mean"].get<double>(), s["float"]["ssim_mean"].get<double>(),
                          s["iterations_mean"].get<double>());
      }
      md += "\n";
    }
  }
  return md;
}

}  // namespace sdsgsm
