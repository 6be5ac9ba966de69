// The frontier of the saved adversarial (see include/sdsgsm/frontier.hpp).
#include "sdsgsm/frontier.hpp"

#include <limits>

#include <fmt/format.h>

#include "sdsgsm/distributed.hpp"

namespace sdsgsm {
namespace {

/// The minimum-norm rule: 8-bit ASR >= 99.9%, then the smallest median 8-bit l2.
bool better(const FrontierPoint& a, const FrontierPoint& b) {
  const bool qa = a.asr_8bit >= 0.999, qb = b.asr_8bit >= 0.999;
  if (qa != qb) return qa;
  if (!qa) return a.asr_8bit > b.asr_8bit;
  return a.l2_8bit_median < b.l2_8bit_median;
}

FrontierPoint measure(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& ro,
                      std::string label, std::string setting) {
  AttackRunResult r = run_attack(model, data, attack, ro);
  FrontierPoint p;
  p.attack = attack.name();
  p.label = std::move(label);
  p.setting = std::move(setting);
  if (!dist::is_root()) return p;
  const RunSummary s = r.stats();
  p.images = s.images;
  p.scored = s.attacked;
  p.passes = s.passes_mean;
  p.forward_passes = s.forward_passes_mean;
  p.backward_passes = s.backward_passes_mean;
  p.asr_8bit = s.rounded_8bit.asr;
  p.fooled_8bit = s.rounded_8bit.fooled;
  p.l2_8bit_median = s.rounded_8bit.l2_median;
  p.l2_8bit_mean = s.rounded_8bit.l2_mean;
  p.ssim_8bit_median = s.rounded_8bit.ssim_median;
  return p;
}

std::string norm_text(double v) { return fmt::format("{:g}", v); }

}  // namespace

nlohmann::json FrontierPoint::to_json() const {
  return {{"attack", attack},
          {"label", label},
          {"setting", setting},
          {"images", images},
          {"scored", scored},
          {"passes_mean", passes},
          {"forward_passes_mean", forward_passes},
          {"backward_passes_mean", backward_passes},
          {"asr_8bit", asr_8bit},
          {"fooled_8bit", fooled_8bit},
          {"l2_8bit_median", l2_8bit_median},
          {"l2_8bit_mean", l2_8bit_mean},
          {"ssim_8bit_median", ssim_8bit_median}};
}

std::vector<FrontierPoint> run_frontier(Classifier& model, const FrontierOptions& o, double tuned_ifgsm_alpha,
                                        const std::function<void(const FrontierPoint&)>& on_point) {
  const Dataset data = open_dataset(o.data, Split::Test, o.offset, o.count);
  RunOptions ro = o.run;
  ro.progress = false;
  ro.first_index = o.offset;
  std::vector<FrontierPoint> points;
  auto add = [&](FrontierPoint p) {
    if (on_point && dist::is_root()) on_point(p);
    points.push_back(std::move(p));
  };
  const AttackOptions bounded = AttackOptions().set_eps(o.eps).set_early_stop(true).set_early_stop_8bit(true);
  // SD-SGSM, shipped defaults, each sample stopping at its first 8-bit success; then refined.
  for (int64_t refine : o.sdsgsm_refine) {
    auto a = make_attack(kSdsgsm, AttackOptions(bounded).set_steps(10).set_refine(refine), o.sd);
    add(measure(model, data, *a, ro, refine ? fmt::format("SD-SGSM + refine {}", refine) : "SD-SGSM",
                "shipped defaults, early stop on 8-bit success"));
  }
  // I-FGSM, early-stopped the same way, at its tuned step.
  for (int64_t refine : o.ifgsm_refine) {
    AttackOptions io = AttackOptions(bounded).set_steps(10).set_refine(refine);
    if (tuned_ifgsm_alpha > 0) io.set_alpha(tuned_ifgsm_alpha);
    auto a = make_attack(kIfgsm, io);
    add(measure(model, data, *a, ro, refine ? fmt::format("I-FGSM + refine {}", refine) : "I-FGSM",
                tuned_ifgsm_alpha > 0 ? fmt::format("alpha {:.4f} (tuned, early stop)", tuned_ifgsm_alpha)
                                      : "alpha 2/255 (not tuned), early stop on 8-bit success"));
  }
  // Quantised DDN; below 100 steps its initial norm is tuned on the tuning images.
  // Data without the tuning images (fewer than tuning_offset + tuning_count): DDN is not tuned.
  const bool can_tune = !o.ddn_steps.empty() &&
                        open_image_source(o.data, Split::Test)->size() >= o.tuning_offset + o.tuning_count;
  const Dataset tuning = can_tune ? open_dataset(o.data, Split::Test, o.tuning_offset, o.tuning_count) : Dataset();
  RunOptions tro = ro;
  tro.first_index = o.tuning_offset;
  for (int64_t steps : o.ddn_steps) {
    double init = 1.0;
    std::string how = "initial norm 1 (the paper's)";
    if (steps < 100 && !can_tune) how = "initial norm 1 (not tuned: the data has no tuning images)";
    if (steps < 100 && can_tune && o.ddn_initial_norms.size() > 1) {
      FrontierPoint best;
      bool have = false;
      for (double n : o.ddn_initial_norms) {
        auto a = make_attack(kDdn, AttackOptions().set_steps(steps), SdsgsmOptions(), MinNormOptions().set_initial_norm(n));
        FrontierPoint p = measure(model, tuning, *a, tro, "", "");
        int64_t pick = (!have || better(p, best)) ? 1 : 0;
        pick = dist::broadcast(pick);  // every rank takes rank 0's choice
        if (pick) {
          best = p;
          init = n;
          have = true;
        }
      }
      how = fmt::format("initial norm {} (tuned on images {}-{})", norm_text(init), o.tuning_offset,
                        o.tuning_offset + o.tuning_count - 1);
    }
    auto a = make_attack(kDdn, AttackOptions().set_steps(steps), SdsgsmOptions(), MinNormOptions().set_initial_norm(init));
    add(measure(model, data, *a, ro, fmt::format("DDN {} steps", steps), "quantised (levels 256); " + how));
  }
  for (const auto& [binary, steps] : o.cw_budgets) {
    auto a = make_attack(kCw, AttackOptions().set_steps(steps), SdsgsmOptions(), MinNormOptions().set_binary_steps(binary));
    add(measure(model, data, *a, ro, fmt::format("C&W {} x {}", binary, steps),
                fmt::format("{} binary steps of {} Adam steps, then the 8-bit finish", binary, steps)));
  }
  for (int64_t steps : o.fmn_steps) {
    auto a = make_attack(kFmn, AttackOptions().set_steps(steps));
    add(measure(model, data, *a, ro, fmt::format("FMN {} steps", steps), "l2, then the 8-bit finish"));
  }
  {
    auto a = make_attack(kDeepfool, AttackOptions().set_steps(attack_info(kDeepfool).default_steps));
    add(measure(model, data, *a, ro, "DeepFool", "l2, at most 50 steps, then the 8-bit finish"));
  }
  return points;
}

}  // namespace sdsgsm
