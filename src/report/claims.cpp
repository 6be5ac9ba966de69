// The paper's claims beside a reproduce folder's results: each claim, the paper's figure, ours
// and a verdict by a stated rule, computed here only (the page, claims.json and claims.md all
// come from reproduce_claims).
#include <cmath>

#include <fmt/format.h>

#include "report/report_internal.hpp"
#include "sdsgsm/attacks.hpp"
#include "sdsgsm/reproduce_tables.hpp"

namespace sdsgsm {
namespace claims_detail {
namespace {

using report_detail::json_or_null;

const char* kReproduced = "reproduced";
const char* kPartly = "partly";
const char* kNotReproduced = "not reproduced";
const char* kNotMeasured = "not measured";

/// The rows of an undefended model in results.json (the defended ones hold "robust").
const nlohmann::json* model_rows(const nlohmann::json& entry) {
  if (!entry.is_object() || entry.contains("robust") || !entry.contains("rows") || !entry["rows"].is_array()) return nullptr;
  return &entry["rows"];
}

const nlohmann::json* find_row(const nlohmann::json& rows, const std::string& regime, const std::string& group,
                               const std::string& attack) {
  for (const auto& r : rows) {
    if (r.value("regime", "") == regime && r.value("group", "") == group && r.value("attack", "") == attack) return &r;
  }
  return nullptr;
}

double figure(const nlohmann::json* row, const char* basis, const char* key) {
  if (row == nullptr || !row->contains(basis) || !(*row)[basis].contains(key) || !(*row)[basis][key].is_number()) return NAN;
  return (*row)[basis][key].get<double>();
}

/// The 8-bit paired statistics of the model's reference SD-SGSM (reproduce's paired.json: the
/// tuned SD-SGSM, else its defaults) against `b_label` (reproduce_run_name of b's row).
const PairedStats* pair_with(const std::vector<PairedStats>& pairs, const std::string& b_name) {
  for (const auto& p : pairs) {
    if (p.basis == "8bit" && p.b == b_name) return &p;
  }
  return nullptr;
}

/// -1: a smaller with 95% confidence; +1: b smaller; 0: neither; 2: not measured.
int sign_of(const PairedStats* p) {
  if (p == nullptr || p->n == 0 || !std::isfinite(p->ci_low)) return 2;
  return p->ci_high < 0 ? -1 : p->ci_low > 0 ? 1 : 0;
}

struct ModelData {
  std::string name;
  const nlohmann::json* rows;
  std::vector<PairedStats> pairs;
};

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

/// A threshold claim on the shipped SD-SGSM (fixed iterations, 8-bit): met on every model or not.
Claim threshold_claim(const std::vector<ModelData>& models, const std::string& claim, const std::string& paper,
                      const char* key, double bar, bool percent, const std::string& rule) {
  Claim c{claim, paper, "", kNotMeasured, rule, nlohmann::json::object()};
  std::vector<std::string> parts;
  int met = 0, measured = 0;
  for (const auto& m : models) {
    const double v = figure(find_row(*m.rows, "fixed", "shipped defaults", kSdsgsm), "rounded_8bit", key);
    if (!std::isfinite(v)) continue;
    ++measured;
    met += v >= bar;
    c.measured[m.name] = v;
    parts.push_back(percent ? fmt::format("{} {:.2f}%", m.name, 100 * v) : fmt::format("{} {:.4f}", m.name, v));
  }
  c.ours = join(parts);
  if (measured > 0) c.verdict = met == measured ? kReproduced : met > 0 ? kPartly : kNotReproduced;
  return c;
}

/// "SD-SGSM has less l2 than <baseline>": the paired 8-bit l2 differences, fixed iterations.
Claim l2_claim(const std::vector<ModelData>& models, const std::string& group, const std::vector<const char*>& attacks,
               const std::string& claim, const std::string& paper) {
  Claim c{claim, paper, "", kNotMeasured,
          "SD-SGSM as reproduce's paired statistics take it (the tuned SD-SGSM, else its defaults) against each "
          "baseline, per image over the images both fool (8-bit, fixed iterations): reproduced when the mean l2 "
          "difference's 95% bootstrap interval lies below 0 for every baseline on every model; not reproduced when it "
          "lies above 0 for one; partly otherwise",
          nlohmann::json::object()};
  std::vector<std::string> parts;
  int smaller = 0, larger = 0, total = 0;
  for (const auto& m : models) {
    for (const char* attack : attacks) {
      const nlohmann::json* row = find_row(*m.rows, "fixed", group, attack);
      if (row == nullptr) continue;
      const std::string b = reproduce_run_name(*row);
      const PairedStats* p = pair_with(m.pairs, b);
      const int s = sign_of(p);
      if (s == 2) continue;
      ++total;
      smaller += s < 0;
      larger += s > 0;
      c.measured[m.name][row->value("label", "")] = {{"reference", p->a},       {"images", p->n},
                                                      {"l2_reference", p->mean_a}, {"l2_baseline", p->mean_b},
                                                      {"mean_diff", p->mean_diff}, {"ci", {p->ci_low, p->ci_high}}};
      parts.push_back(fmt::format("{} {}: {:.3f} vs {:.3f} ({:+.3f}, [{:+.3f}, {:+.3f}])", m.name, row->value("label", ""),
                                  p->mean_a, p->mean_b, p->mean_diff, p->ci_low, p->ci_high));
    }
  }
  c.ours = join(parts);
  if (total > 0) c.verdict = smaller == total ? kReproduced : larger > 0 ? kNotReproduced : kPartly;
  return c;
}

/// The ablation: the full method against each component alone, each alone against neither
/// (tuned attacks, fixed iterations, 8-bit l2).
Claim ablation_claim(const std::vector<ModelData>& models) {
  Claim c{"spatial distribution and smoothing are complementary (ablation)",
          "each component lowers l2; both together the lowest",
          "",
          kNotMeasured,
          "tuned attacks, fixed iterations, mean 8-bit l2: reproduced when SD-SGSM is below each component alone "
          "(paired 95% interval below 0) and each component alone is below I-FGSM (neither) on every model; partly when "
          "SD-SGSM is below both components alone but a component alone is not below I-FGSM; not reproduced otherwise",
          nlohmann::json::object()};
  const std::string family = "SD-SGSM family, tuned";
  std::vector<std::string> parts;
  int full = 0, each = 0, measured = 0;
  for (const auto& m : models) {
    const nlohmann::json* neither = find_row(*m.rows, "fixed", "tuned", kIfgsm);
    const nlohmann::json* sd = find_row(*m.rows, "fixed", family, kSdIfgsm);
    const nlohmann::json* smooth = find_row(*m.rows, "fixed", family, kSgsm);
    if (neither == nullptr || sd == nullptr || smooth == nullptr) continue;
    const PairedStats* vs_sd = pair_with(m.pairs, reproduce_run_name(*sd));
    const PairedStats* vs_smooth = pair_with(m.pairs, reproduce_run_name(*smooth));
    if (sign_of(vs_sd) == 2 || sign_of(vs_smooth) == 2) continue;
    ++measured;
    const double l2_neither = figure(neither, "rounded_8bit", "l2_mean"), l2_sd = figure(sd, "rounded_8bit", "l2_mean"),
                 l2_smooth = figure(smooth, "rounded_8bit", "l2_mean");
    full += sign_of(vs_sd) < 0 && sign_of(vs_smooth) < 0;
    each += l2_sd < l2_neither && l2_smooth < l2_neither;
    c.measured[m.name] = {{"neither", l2_neither}, {"distribution_only", l2_sd}, {"smoothing_only", l2_smooth},
                          {"both", vs_sd->mean_a}, {"both_label", vs_sd->a}};
    parts.push_back(fmt::format("{}: neither {:.3f}, distribution only {:.3f}, smoothing only {:.3f}, both {:.3f}", m.name,
                                l2_neither, l2_sd, l2_smooth, vs_sd->mean_a));
  }
  c.ours = join(parts);
  if (measured > 0) c.verdict = full == measured && each == measured ? kReproduced : full == measured ? kPartly : kNotReproduced;
  return c;
}

}  // namespace
}  // namespace claims_detail

using namespace claims_detail;

std::vector<Claim> reproduce_claims(const fs::path& dir) {
  const nlohmann::json results = json_or_null(dir / "results.json");
  if (!results.is_object() || !results.contains("models") || !results["models"].is_object()) return {};
  std::vector<ModelData> models;
  for (const auto& [name, entry] : results["models"].items()) {
    const nlohmann::json* rows = model_rows(entry);
    if (rows == nullptr) continue;
    ModelData m{name, rows, {}};
    const nlohmann::json pj = json_or_null(dir / reproduce_folder_name(name) / "paired.json");
    if (pj.is_array()) {
      try {
        m.pairs = paired_from_json(pj);
      } catch (const Error&) {
      }
    }
    models.push_back(std::move(m));
  }
  std::vector<Claim> out;
  out.push_back(threshold_claim(models, "attack success rate on CIFAR-10", "99.9%", "asr", 0.999, true,
                                "SD-SGSM with its shipped defaults, fixed iterations, over the correctly classified "
                                "images, 8-bit adversarials: reproduced when at least 99.9% on every model"));
  out.push_back(threshold_claim(models, "structural similarity (SSIM) of its adversarials", "0.947", "ssim_mean", 0.947,
                                false,
                                "SD-SGSM with its shipped defaults, fixed iterations, mean SSIM of the 8-bit adversarials "
                                "over the images they fool: reproduced when at least 0.947 on every model"));
  const std::string paper_l2 = "less l2 than each";
  out.push_back(l2_claim(models, "textbook", {kFgsm, kIfgsm, kMifgsm},
                         "SD-SGSM has less l2 than FGSM, I-FGSM and MI-FGSM", paper_l2));
  out.push_back(l2_claim(models, "tuned", {kIfgsm, kMifgsm},
                         "... than I-FGSM and MI-FGSM with step and decay tuned by the same rule", "not claimed"));
  out.push_back(ablation_claim(models));
  return out;
}

nlohmann::json claims_json(const std::vector<Claim>& claims) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : claims) {
    j.push_back({{"claim", c.claim}, {"paper", c.paper}, {"ours", c.ours}, {"verdict", c.verdict}, {"rule", c.rule},
                 {"measured", c.measured}});
  }
  return j;
}

std::string claims_markdown(const std::vector<Claim>& claims) {
  std::string md = "| claim | paper | ours | verdict |\n|---|---|---|---|\n";
  for (const auto& c : claims) md += fmt::format("| {} | {} | {} | {} |\n", c.claim, c.paper, c.ours.empty() ? "–" : c.ours, c.verdict);
  md += "\nThe rules:\n\n";
  for (const auto& c : claims) md += fmt::format("- {}: {}.\n", c.claim, c.rule);
  return md;
}

bool write_claims(const fs::path& dir) {
  const auto claims = reproduce_claims(dir);
  if (claims.empty()) return false;
  write_file_atomic(dir / "claims.json", claims_json(claims).dump(2) + "\n");
  write_file_atomic(dir / "claims.md", "# The paper's claims and ours\n\n" + claims_markdown(claims));
  return true;
}

}  // namespace sdsgsm
