// A run's figures: the deterministic summary over the scored samples, and the wall-clock timing.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {
namespace {

// Over an empty set (no image classified correctly, none fooled) a figure is NaN, never 0: it
// is written to JSON as null (nlohmann's dump of a non-finite number) and printed as "n/a".
constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
double mean_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).mean().item<double>() : kNone; }
double median_of(const torch::Tensor& v) {
  if (v.numel() == 0) return kNone;
  // The lower median of torch is not the usual one: average the two middle values.
  auto s = std::get<0>(v.to(torch::kFloat64).sort());
  int64_t n = s.size(0);
  return n % 2 ? s[n / 2].item<double>() : 0.5 * (s[n / 2 - 1].item<double>() + s[n / 2].item<double>());
}
double max_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).max().item<double>() : kNone; }

DistortionStats distortion_stats(const torch::Tensor& mask, const torch::Tensor& success, const torch::Tensor& l2,
                                 const torch::Tensor& linf, const torch::Tensor& l0, const torch::Tensor& ssim,
                                 const torch::Tensor& psnr) {
  DistortionStats d;
  d.asr = mean_of(success.index({mask}));
  // Distances over the scored samples fooled in this form.
  const torch::Tensor fooled = mask.logical_and(success);
  auto sel = [&](const torch::Tensor& v) { return v.index({fooled}); };
  d.fooled = fooled.sum().item<int64_t>();
  d.l2_mean = mean_of(sel(l2));
  d.l2_median = median_of(sel(l2));
  d.linf_mean = mean_of(sel(linf));
  d.linf_median = median_of(sel(linf));
  d.linf_max = max_of(sel(linf));
  d.l0_mean = mean_of(sel(l0));
  d.ssim_mean = mean_of(sel(ssim));
  d.ssim_median = median_of(sel(ssim));
  d.psnr_mean = mean_of(sel(psnr));
  return d;
}

/// Peak resident memory of this process in MiB: VmHWM of /proc/self/status. (getrusage's ru_maxrss
/// keeps the peak of the process that launched this one across fork and exec, e.g. a large Python
/// process; VmHWM is this process's own.) 0 when it cannot be read.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // in kB
  }
  return 0.0;
}

}  // namespace

std::string few_correct_warning(int64_t correct, int64_t images) {
  if (images <= 0 || (correct > 0 && correct * 10 >= images && (correct >= 10 || images < 10))) return "";
  if (correct == 0) {
    return fmt::format("the model classifies none of the {} images correctly: there is nothing to attack, and ASR, "
                       "distances and SSIM are n/a (check the model, its classes and its input scaling)",
                       images);
  }
  return fmt::format("the model classifies only {} of the {} images correctly ({:.1f}%): ASR, distances and SSIM are "
                     "over those {} alone",
                     correct, images, 100.0 * static_cast<double>(correct) / static_cast<double>(images), correct);
}

std::string figure_or_na(double v, const std::string& format) {
  return std::isfinite(v) ? fmt::format(fmt::runtime(format), v) : "n/a";
}

bool AttackRunResult::targeted() const { return config.value("targeted", std::string("none")) != "none"; }

nlohmann::json DistortionStats::to_json() const {
  return {{"asr", asr},
          {"fooled", fooled},
          {"l2_mean", l2_mean},
          {"l2_median", l2_median},
          {"linf_mean", linf_mean},
          {"linf_median", linf_median},
          {"linf_max", linf_max},
          {"l0_mean", l0_mean},
          {"ssim_mean", ssim_mean},
          {"ssim_median", ssim_median},
          {"psnr_mean", psnr_mean},
          {"over", "the scored samples fooled in this form"}};
}

nlohmann::json RunSummary::to_json() const {
  nlohmann::json j;
  j["attack"] = attack;
  j["images"] = images;
  j["clean_correct"] = clean_correct;
  j["clean_accuracy"] = clean_accuracy;
  j["attacked"] = attacked;
  j["robust_accuracy"] = robust_accuracy;
  j["robust_accuracy_8bit"] = robust_accuracy_8bit;
  j["float"] = float_stats.to_json();
  j["rounded_8bit"] = rounded_8bit.to_json();
  j["iterations_mean"] = iterations_mean;
  j["forward_passes_mean"] = forward_passes_mean;
  j["backward_passes_mean"] = backward_passes_mean;
  j["passes_mean"] = passes_mean;
  j["zero_gradient_samples"] = zero_gradient_samples;
  j["scored_over"] = scored_over;
  return j;
}

RunSummary AttackRunResult::stats() const {
  RunSummary s;
  const int64_t n = size();
  auto clean_ok = clean_pred.eq(label);
  // Targeted attacks are scored on correct samples whose target differs from the true label.
  auto mask = targeted() ? clean_ok.logical_and(target.ne(label)) : clean_ok;
  s.attack = attack;
  s.images = n;
  s.clean_correct = clean_ok.sum().item<int64_t>();
  s.clean_accuracy = n ? mean_of(clean_ok) : 0.0;
  s.attacked = mask.sum().item<int64_t>();
  s.robust_accuracy = n ? mean_of(adv_pred.eq(label)) : 0.0;
  s.robust_accuracy_8bit = n ? mean_of(adv_pred_8bit.eq(label)) : 0.0;
  s.float_stats = distortion_stats(mask, success, l2, linf, l0, ssim, psnr);
  s.rounded_8bit = distortion_stats(mask, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit);
  s.iterations_mean = mean_of(iterations.index({mask}));
  s.forward_passes_mean = mean_of(forward_passes.index({mask}));
  s.backward_passes_mean = mean_of(backward_passes.index({mask}));
  s.passes_mean = mean_of(torch::maximum(forward_passes, backward_passes).index({mask}));
  s.zero_gradient_samples = zero_gradient_samples;
  s.scored_over = targeted() ? "clean-correct samples whose target differs from the label"
                             : "samples classified correctly before the attack";
  return s;
}

nlohmann::json AttackRunResult::summary() const { return stats().to_json(); }

nlohmann::json AttackRunResult::timing() const {
  nlohmann::json j;
  j["attack_seconds"] = attack_seconds;
  j["ddi_seconds"] = allocation_seconds;
  j["iteration_seconds"] = attack_seconds - allocation_seconds;
  // DDI's cost against the iterations it serves (0 without DDI).
  j["ddi_over_iterations"] = attack_seconds > allocation_seconds ? allocation_seconds / (attack_seconds - allocation_seconds) : 0.0;
  j["metrics_seconds"] = metrics_seconds;
  j["wall_seconds"] = wall_seconds;
  j["images_this_session"] = images_this_session;
  j["images_per_second"] = wall_seconds > 0 ? images_this_session / wall_seconds : 0.0;
  j["attack_images_per_second"] = attack_seconds > 0 ? size() / attack_seconds : 0.0;
  j["ranks"] = dist::size();
  j["threads_per_rank"] = torch::get_num_threads();
  j["peak_rss_mb_rank0"] = peak_rss_mb();
  j["version"] = version_string();
  return j;
}

nlohmann::json AttackRunResult::report() const {
  nlohmann::json j = summary();
  const nlohmann::json t = timing();
  for (const auto& [k, v] : t.items()) j[k] = v;
  return j;
}

}  // namespace sdsgsm
