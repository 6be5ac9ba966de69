// Curves and paired statistics over the per-sample results of attack runs (the fair-comparison
// issue): ASR as a function of the l2 budget, of the SSIM floor and of eps, and per-image
// comparisons of two attacks run on the same images, with a seeded bootstrap interval.
//
// Every figure counts the samples an attack's summary counts (AttackRunResult::summary()):
// those the model classified correctly before the attack (for targeted attacks, also whose target
// differs from the label). A curve's last l2 point and first SSIM floor at or below every sample's
// SSIM therefore give the run's ASR. Each figure exists for the float adversarials and for the
// adversarials rounded to 8-bit pixels ("float" and "8bit" bases).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sdsgsm/core.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

/// Which adversarials a figure is about: the float ones, or those rounded to 8-bit pixels.
enum class Basis { Float, Rounded8bit };
/// "float" or "8bit".
std::string basis_name(Basis b);

/// One curve of one attack: asr[i] is the share of counted samples fooled within x[i].
struct Curve {
  std::string attack;  ///< the attack's label in the comparison
  std::string curve;   ///< "l2_budget", "ssim_floor" or "eps"
  std::string basis;   ///< "float" or "8bit"
  std::vector<double> x, asr;
};

/// The x values shared by the curves of every attack of a comparison.
struct CurveGrid {
  std::vector<double> l2_budgets;
  std::vector<double> ssim_floors;
};

/// l2 budgets from 0 to the largest l2 of a fooled counted sample over all `runs` (both bases),
/// rounded up to two significant digits, in `points` even steps; SSIM floors 0.90 to 1.00 in
/// `points` even steps. With no fooled sample, budgets run from 0 to 1.
CurveGrid default_grid(const std::vector<const AttackRunResult*>& runs, int points = 51);

/// The counted samples of a run (see the file comment), as a bool tensor.
torch::Tensor counted_samples(const AttackRunResult& r);

/// Share of counted samples with success && l2 <= b, for each budget b; 0 when none counts.
std::vector<double> asr_within_l2(const AttackRunResult& r, const std::vector<double>& budgets, Basis basis);
/// Share of counted samples with success && ssim >= f, for each floor f; 0 when none counts.
std::vector<double> asr_above_ssim(const AttackRunResult& r, const std::vector<double>& floors, Basis basis);

/// The four curves of one run: l2 budget and SSIM floor, float and 8-bit.
std::vector<Curve> attack_curves(const std::string& label, const AttackRunResult& r, const CurveGrid& grid);

/// ASR against eps for a fixed-epsilon attack, one run per eps (filled by the caller).
struct EpsCurve {
  std::string attack;
  std::vector<double> eps, asr, asr_8bit;
};
/// Its two curves ("eps", float and 8-bit); throws Error when the lists differ in length.
std::vector<Curve> eps_curves(const EpsCurve& e);

/// Per-image comparison of attacks a and b on the same images, over the counted samples that both
/// fool (on the given basis). diff = l2(a) - l2(b).
struct PairedStats {
  std::string a, b, basis;
  int64_t n = 0;                                  ///< images both fool
  double mean_diff = 0;                           ///< mean of l2(a) - l2(b); NaN when n = 0
  double ci_low = 0, ci_high = 0;                 ///< percentile bootstrap interval of mean_diff; NaN when n = 0
  double a_smaller = 0, b_smaller = 0, ties = 0;  ///< shares of the n images (0 when n = 0)
  double mean_a = 0, mean_b = 0;                  ///< mean l2 of each over the same n images; NaN when n = 0
  int resamples = 0;
  double level = 0.95;
  uint64_t seed = 0;
};

struct BootstrapOptions {
  int resamples = 2000;
  double level = 0.95;
  uint64_t seed = 0;
};

/// The paired statistics of two runs. Throws Error when the runs are not over the same images
/// (different sizes or sample indices) or the options are invalid. Deterministic for a seed, on
/// every platform (own index sampling from mt19937_64, whose output the standard fixes).
PairedStats paired_l2(const std::string& a_label, const AttackRunResult& a, const std::string& b_label,
                      const AttackRunResult& b, Basis basis, const BootstrapOptions& options = {});

/// Every pair (i < j) of `runs` on both bases, float first.
std::vector<PairedStats> all_pairs(const std::vector<std::string>& labels,
                                   const std::vector<const AttackRunResult*>& runs,
                                   const BootstrapOptions& options = {});

/// Long format: attack,curve,basis,x,asr (one row per point).
std::string curves_csv(const std::vector<Curve>& curves);
/// [{"attack","curve","basis","x":[...],"asr":[...]}, ...]
nlohmann::json curves_json(const std::vector<Curve>& curves);
/// Back from curves_json (the report reads curves.json); throws Error on a wrong shape.
std::vector<Curve> curves_from_json(const nlohmann::json& j);

/// a,b,basis,n,mean_a,mean_b,mean_diff,ci_low,ci_high,a_smaller,b_smaller,ties,resamples,level,seed
std::string paired_csv(const std::vector<PairedStats>& stats);
/// One object per pair; NaN figures are null.
nlohmann::json paired_json(const std::vector<PairedStats>& stats);
std::vector<PairedStats> paired_from_json(const nlohmann::json& j);
/// A markdown table: pair, basis, n, the two means, the difference with its interval, the shares.
std::string paired_markdown(const std::vector<PairedStats>& stats);

/// Writes curves.csv, curves.json, paired.csv and paired.json into `dir` (each atomically).
void write_curves_and_pairs(const fs::path& dir, const std::vector<Curve>& curves,
                            const std::vector<PairedStats>& pairs);

/// Everything a comparison writes, from its runs: the curves on the default grid (plus `eps`
/// curves, if any) and all pairs; writes the four files into `dir` and returns the paired
/// markdown table.
std::string write_comparison_figures(const fs::path& dir, const std::vector<std::string>& labels,
                                     const std::vector<const AttackRunResult*>& runs,
                                     const std::vector<EpsCurve>& eps = {}, const BootstrapOptions& options = {});

}  // namespace sdsgsm
