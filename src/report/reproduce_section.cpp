// The writing of `sdsgsm reproduce` (reproduce_section.hpp): results.md's prose and each model's
// section, with its curves and paired files.
#include "sdsgsm/reproduce_section.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/reproduce_tables.hpp"

namespace sdsgsm {
namespace {

/// The row the others are compared with in a regime, by the rows' ids: the tuned SD-SGSM (its
/// coarse DDI grid, tuning key sdsgsm), else its defaults; -1: none.
int64_t reference_row(const std::vector<std::string>& ids, const Regime& regime) {
  for (const std::string kind : {"/tuned/", "/defaults/"}) {
    const auto it = std::find(ids.begin(), ids.end(), regime.key + kind + kSdsgsm);
    if (it != ids.end()) return static_cast<int64_t>(it - ids.begin());
  }
  return -1;
}

/// The ASR-against-eps table of some curves (float ASR; 8-bit in curves.csv).
std::string eps_table(const std::vector<EpsCurve>& curves, int64_t images) {
  std::string t = fmt::format("### ASR against eps (the first {} images; float adversarials)\n\n| attack |", images);
  for (double e : curves.front().eps) t += fmt::format(" {:.4g}/255 |", e * 255);
  t += "\n|---|";
  for (size_t i = 0; i < curves.front().eps.size(); ++i) t += "---:|";
  t += "\n";
  for (const auto& c : curves) {
    t += "| " + c.attack + " |";
    for (double a : c.asr) t += fmt::format(" {:.1f}% |", 100 * a);
    t += "\n";
  }
  return t + "\n";
}

std::string model_heading(const ReproduceModelInfo& info, double clean_accuracy) {
  if (!info.defended) {
    return fmt::format("## {} ({} images, clean accuracy {:.2f}%)\n\n", info.display_name, info.images,
                       100 * clean_accuracy);
  }
  return fmt::format(
      "## {} (defended; {} images, clean accuracy {:.2f}%)\n\nThe strength table: an adversarially trained "
      "model, where ASR is not free. Every attack at eps {} on the first {} images: the textbook baselines and "
      "the SD-SGSM family on their defaults ({} iterations), APGD on its own (100 steps). Tuning does not "
      "apply here (no setting reaches the rule's ASR >= 99.9%). ASR over the images the model classifies "
      "correctly; l2 and SSIM over the images each attack fools.\n\n",
      info.display_name, info.images, 100 * clean_accuracy, info.eps, info.images, info.steps);
}

/// Paired statistics of the reference SD-SGSM against every other attack of its regime (the
/// minimum-norm attacks: against the early-stop reference, on their images), both bases.
std::vector<PairedStats> reproduce_pairs(const ReproduceModelRuns& m) {
  std::vector<PairedStats> pairs;
  for (const Regime& regime : all_regimes()) {
    const int64_t ref = reference_row(m.ids, regime == kMinimumNormRegime ? kEarlyStopRegime : regime);
    if (ref < 0) continue;
    for (size_t i = 0; i < m.rows.size(); ++i) {
      if (m.rows[i]["regime"] != regime.key || static_cast<int64_t>(i) == ref) continue;
      const AttackRunResult a = first_samples(m.results[ref], m.results[i].size());
      for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
        pairs.push_back(paired_l2(reproduce_run_name(m.rows[ref]), a, reproduce_run_name(m.rows[i]), m.results[i], b));
      }
    }
  }
  return pairs;
}

}  // namespace

AttackRunResult first_samples(const AttackRunResult& r, int64_t n) {
  AttackRunResult h = r;
  if (n <= 0 || n >= r.size()) return h;
  for (const auto& c : sample_columns()) {
    torch::Tensor& t = h.*c.member;
    if (t.defined()) t = t.slice(0, 0, n);
  }
  return h;
}

std::string reproduce_intro(const std::vector<std::string>& models, int64_t count, int64_t offset,
                            const std::string& eps, int64_t steps) {
  return fmt::format(
      "# SD-SGSM reproduction: a fair comparison\n\nCommand: `sdsgsm reproduce --models {} --count {} --offset {} "
      "--eps {} --steps {}` ({}).\n\nEvery attack runs on the same images with the same eps and iterations. "
      "Groups: **textbook** (the literature's settings, alpha 2/255), **tuned** (the baselines' step and decay "
      "tuned by the rule), **SD-SGSM family, tuned** (by the same rule), **shipped defaults** (SD-SGSM's "
      "defaults). The rule, on test images 5000-5999: ASR >= 99.9% float and 8-bit, then the highest SSIM "
      "(`sdsgsm tune`; settings in models/NAME.tuned.json). Figures are over the images each model classifies "
      "correctly; \"8-bit\": the adversarials rounded to 8-bit pixels.\n\n",
      fmt::join(models, ","), count, offset, eps, steps, version_string());
}

std::string write_reproduce_model(const ReproduceModelInfo& info, const ReproduceModelRuns& m,
                                  const fs::path& model_dir, nlohmann::json& json) {
  const auto& rows = m.rows;
  std::string md = model_heading(info, rows[0]["clean_accuracy"].get<double>());
  if (!info.defended && !info.tuned) {
    md += "**Not tuned**: no tuned settings for this model (models/NAME.tuned.json, written by `sdsgsm tune`), "
          "so the tuned groups are missing and the comparison is not fair.\n\n";
  }
  for (const Regime& regime : all_regimes()) {
    std::vector<const nlohmann::json*> sel;
    for (const auto& s : rows) {
      if (s["regime"] == regime.key) sel.push_back(&s);
    }
    if (sel.empty()) continue;
    md += fmt::format("### {}\n\n{}\n", regime.heading, reproduce_table(sel));
  }
  md += ablation_table(rows, m.ids);
  if (info.defended && !m.eps_curves.empty()) md += eps_table(m.eps_curves, info.eps_curve_images);
  if (!m.min_eps_rows.empty()) {
    md += min_eps_table(m.min_eps_rows, info.eps_curve_images);
    json["min_eps"] = m.min_eps_rows;
  }
  // Curves of every run on one grid, and the eps curves.
  std::vector<const AttackRunResult*> runs;
  for (const auto& r : m.results) runs.push_back(&r);
  const CurveGrid grid = default_grid(runs);
  std::vector<Curve> curves;
  for (size_t i = 0; i < m.results.size(); ++i) {
    for (auto& c : attack_curves(reproduce_run_name(rows[i]), m.results[i], grid)) curves.push_back(std::move(c));
  }
  for (const auto& ec : m.eps_curves) {
    for (auto& c : eps_curves(ec)) curves.push_back(std::move(c));
  }
  const std::vector<PairedStats> pairs = reproduce_pairs(m);
  write_curves_and_pairs(model_dir, curves, pairs);
  std::vector<PairedStats> shown;
  for (const auto& ps : pairs) {
    if (ps.basis == "8bit") shown.push_back(ps);
  }
  md += fmt::format(
      "### Paired l2 differences, per image (8-bit adversarials)\n\nOver the images both attacks fool, "
      "the mean of l2(a) - l2(b) with a 95% bootstrap interval (2,000 resamples, seed 0), and the share of "
      "images where each perturbation is smaller. Both bases and the curves (ASR against the l2 budget, the "
      "SSIM floor and eps) are in {0}/paired.csv and {0}/curves.csv.\n\n{1}\n",
      reproduce_folder_name(info.name), paired_markdown(shown));
  json["rows"] = rows;
  return md;
}

std::string reproduce_robust_title(const std::vector<std::string>& stages, int64_t queries) {
  std::string labels;
  for (const auto& l : stages) labels += (labels.empty() ? "" : ", ") + l;
  return fmt::format("### Robust accuracy under the ensemble ({} {} queries)", labels, queries);
}

std::string reproduce_robust_section(const std::string& table, const std::string& model, int64_t images,
                                     const std::string& eps, int64_t apgd_steps, int64_t queries) {
  return fmt::format("{}\nOn the first {} images at eps {}: APGD {} steps, 1 restart, APGD-T and FAB-T with 9 target classes; "
                     "Square with {} queries where AutoAttack's standard version uses 5,000. Each attack runs on the "
                     "images still robust; per image in {}/robust.csv.\n\n",
                     table, images, eps, apgd_steps, queries, reproduce_folder_name(model) + "/robust");
}

std::string reproduce_robust_curve_section(const std::string& curve_table, const std::string& summary,
                                           const std::string& model, int64_t images, const std::string& eps,
                                           int64_t apgd_steps, int64_t queries) {
  return fmt::format("{}\nAt eps {}: {}\nOn the first {} images: APGD {} steps, 1 restart, APGD-T and FAB-T with 9 target "
                     "classes; Square with {} queries where AutoAttack's standard version uses 5,000. At each radius each "
                     "attack runs on the images still robust, and a radius attacks only the images robust at the one "
                     "before it (an image fooled in a smaller ball is fooled in every larger one). Per image in {}/robust.csv "
                     "(the attack and the first radius that fooled it), per radius in {}/robust_curve.csv.\n\n",
                     curve_table, eps, summary, images, apgd_steps, queries, reproduce_folder_name(model) + "/robust",
                     reproduce_folder_name(model) + "/robust");
}

std::string reproduce_frontier_section(const std::string& model, int64_t images, const std::string& table) {
  return fmt::format(
      "### The saved adversarial: 8-bit l2 against model passes ({} images)\n\nEach attack at several budgets "
      "on the first {} images. Passes per image count every forward pass the attack made (a gradient step is "
      "one forward and one backward pass; DDI's windows, 8-bit checks and the refinement included); figures "
      "over the images each attack fools once its adversarial is rounded to 8-bit pixels. In {}/frontier.csv.\n\n{}\n",
      images, images, reproduce_folder_name(model), table);
}

std::string reproduce_transfer_section(int64_t images, const std::string& eps, const std::string& tables) {
  return fmt::format(
      "## Transfer between models ({} images, eps {})\n\nEach attack's fixed-iteration adversarials (textbook "
      "settings; SD-SGSM on its defaults), made on one model and given to the others: a cell counts the images "
      "the attack fooled on the model it was made on that the other model classifies correctly.\n{}\n",
      images, eps, tables);
}

}  // namespace sdsgsm
