#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stb_image_write.h>

#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/runner.hpp"

namespace sdsgsm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double mean_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).mean().item<double>() : 0.0; }
double median_of(const torch::Tensor& v) {
  if (v.numel() == 0) return 0.0;
  // The lower median of torch is not the usual one: average the two middle values.
  auto s = std::get<0>(v.to(torch::kFloat64).sort());
  int64_t n = s.size(0);
  return n % 2 ? s[n / 2].item<double>() : 0.5 * (s[n / 2 - 1].item<double>() + s[n / 2].item<double>());
}
double max_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).max().item<double>() : 0.0; }

nlohmann::json distortion_block(const torch::Tensor& mask, const torch::Tensor& success, const torch::Tensor& l2,
                                const torch::Tensor& linf, const torch::Tensor& l0, const torch::Tensor& ssim,
                                const torch::Tensor& psnr) {
  auto sel = [&](const torch::Tensor& v) { return v.index({mask}); };
  nlohmann::json j;
  j["asr"] = mean_of(sel(success));
  j["l2_mean"] = mean_of(sel(l2));
  j["l2_median"] = median_of(sel(l2));
  j["linf_mean"] = mean_of(sel(linf));
  j["linf_max"] = max_of(sel(linf));
  j["l0_mean"] = mean_of(sel(l0));
  j["ssim_mean"] = mean_of(sel(ssim));
  j["psnr_mean"] = mean_of(sel(psnr));
  return j;
}

std::string csv_number(double v) { return fmt::format("{:.6g}", v); }

/// A fresh temporary folder beside `dir`.
fs::path make_temp_dir_beside(const fs::path& dir) {
  fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::path tmp = parent / fmt::format(".{}.tmp-{}", dir.filename().string(), static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error(fmt::format("cannot write --out '{}': {}", dir.string(), ec.message()));
  return tmp;
}

/// Renames a finished temporary folder onto `dir`, replacing an earlier output folder.
void commit_output_dir(const fs::path& tmp, const fs::path& dir) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(dir)) {
    old = dir.string() + fmt::format(".old-{}", static_cast<long>(::getpid()));
    fs::rename(dir, old, ec);
    if (ec) throw Error(fmt::format("cannot replace '{}': {}", dir.string(), ec.message()));
  }
  fs::rename(tmp, dir, ec);
  if (ec) throw Error(fmt::format("cannot write '{}': {}", dir.string(), ec.message()));
  if (!old.empty()) fs::remove_all(old, ec);
}


}  // namespace

bool AttackRunResult::targeted() const { return config.value("targeted", std::string("none")) != "none"; }

AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options) {
  if (options.batch_size < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", options.batch_size));
  const int64_t n = data.size();
  if (n == 0) throw Error("no images to attack");
  AttackRunResult r;
  r.attack = attack.name();
  r.config = attack.config();
  auto start = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> cols[19];
  std::vector<torch::Tensor> advs;
  Progress bar(attack.name(), n, options.progress);
  for (int64_t i = 0; i < n; i += options.batch_size) {
    const int64_t b = std::min(options.batch_size, n - i);
    auto x = data.float_images(i, b);
    auto y = data.batch_labels(i, b);
    auto ids = torch::arange(options.first_index + i, options.first_index + i + b, torch::kInt64);
    auto t0 = std::chrono::steady_clock::now();
    AttackResult a = attack.run(model, x, y, ids);
    r.attack_seconds += seconds_since(t0);
    r.zero_gradient_samples += a.zero_gradient_samples;
    r.allocation_seconds += a.allocation_seconds;
    auto adv8 = quantize_8bit(a.adversarial);
    auto pred8 = predict(model, adv8.to(torch::kFloat32));
    const bool targeted = attack.options().targeted != TargetMode::None;
    auto success8 = targeted ? pred8.eq(a.target) : pred8.ne(y);
    torch::Tensor parts[19] = {ids, y, a.target, a.clean_pred, a.adv_pred, a.success, a.iterations,
                               l2_distance(x, a.adversarial), linf_distance(x, a.adversarial),
                               l0_fraction(x, a.adversarial), ssim(x, a.adversarial), psnr(x, a.adversarial),
                               pred8, success8, l2_distance(x, adv8), linf_distance(x, adv8),
                               l0_fraction(x, adv8), ssim(x, adv8), psnr(x, adv8)};
    for (int c = 0; c < 19; ++c) cols[c].push_back(parts[c]);
    if (options.keep_adversarial) advs.push_back(a.adversarial);
    int64_t done_success = 0;
    for (const auto& s : cols[5]) done_success += s.sum().item<int64_t>();
    bar.advance(b, fmt::format("success {:.1f}%", 100.0 * done_success / (i + b)));
  }
  torch::Tensor* outs[19] = {&r.index,    &r.label,       &r.target,       &r.clean_pred, &r.adv_pred,
                             &r.success,  &r.iterations,  &r.l2,           &r.linf,       &r.l0,
                             &r.ssim,     &r.psnr,        &r.adv_pred_8bit, &r.success_8bit, &r.l2_8bit,
                             &r.linf_8bit, &r.l0_8bit,    &r.ssim_8bit,    &r.psnr_8bit};
  for (int c = 0; c < 19; ++c) *outs[c] = torch::cat(cols[c]);
  if (options.keep_adversarial) r.adversarial = torch::cat(advs);
  r.total_seconds = seconds_since(start);
  bar.finish(fmt::format("ASR {:.2f}%", 100 * r.summary()["float"]["asr"].get<double>()));
  if (r.zero_gradient_samples > 0) {
    spdlog::warn("{}: {} of {} samples had an all-zero input gradient at the first step (saturated softmax or "
                 "a non-differentiable model?): their robustness may be overestimated",
                 r.attack, r.zero_gradient_samples, n);
  }
  return r;
}

nlohmann::json AttackRunResult::summary() const {
  nlohmann::json j;
  const int64_t n = size();
  auto clean_ok = clean_pred.eq(label);
  // Targeted attacks are scored on correct samples whose target differs from the true label.
  auto mask = targeted() ? clean_ok.logical_and(target.ne(label)) : clean_ok;
  const int64_t attacked = mask.sum().item<int64_t>();
  j["attack"] = attack;
  j["images"] = n;
  j["clean_correct"] = clean_ok.sum().item<int64_t>();
  j["clean_accuracy"] = n ? mean_of(clean_ok) : 0.0;
  j["attacked"] = attacked;
  j["robust_accuracy"] = n ? mean_of(adv_pred.eq(label)) : 0.0;
  j["robust_accuracy_8bit"] = n ? mean_of(adv_pred_8bit.eq(label)) : 0.0;
  j["float"] = distortion_block(mask, success, l2, linf, l0, ssim, psnr);
  j["rounded_8bit"] = distortion_block(mask, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit);
  j["iterations_mean"] = mean_of(iterations.index({mask}));
  j["attack_seconds"] = attack_seconds;
  j["ddi_seconds"] = allocation_seconds;
  j["iteration_seconds"] = attack_seconds - allocation_seconds;
  j["total_seconds"] = total_seconds;
  j["images_per_second"] = attack_seconds > 0 ? n / attack_seconds : 0.0;
  j["zero_gradient_samples"] = zero_gradient_samples;
  j["scored_over"] = targeted() ? "clean-correct samples whose target differs from the label"
                                : "samples classified correctly before the attack";
  return j;
}

std::string AttackRunResult::samples_csv() const {
  std::string out =
      "index,label,target,clean_pred,adv_pred,success,iterations,l2,linf,l0,ssim,psnr,"
      "adv_pred_8bit,success_8bit,l2_8bit,linf_8bit,ssim_8bit,psnr_8bit\n";
  auto I = [](const torch::Tensor& t, int64_t i) { return t[i].item<int64_t>(); };
  auto D = [](const torch::Tensor& t, int64_t i) { return csv_number(t[i].item<double>()); };
  for (int64_t i = 0; i < size(); ++i) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", I(index, i), I(label, i),
                       I(target, i), I(clean_pred, i), I(adv_pred, i), I(success, i), I(iterations, i), D(l2, i),
                       D(linf, i), D(l0, i), D(ssim, i), D(psnr, i), I(adv_pred_8bit, i), I(success_8bit, i),
                       D(l2_8bit, i), D(linf_8bit, i), D(ssim_8bit, i), D(psnr_8bit, i));
  }
  return out;
}

void check_output_dir(const fs::path& dir) {
  if (dir.empty()) throw Error("--out is required: the folder to write results to");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw Error(fmt::format("--out '{}' exists and is not a folder", dir.string()));
    bool empty = fs::is_empty(dir, ec);
    bool ours = fs::exists(dir / "metrics.json") || fs::exists(dir / "compare.json") ||
                fs::exists(dir / "results.json") || fs::exists(dir / "saliency.json") ||
                fs::exists(dir / "sweep.json");
    if (!empty && !ours) {
      throw Error(fmt::format("--out '{}' exists and is not an sdsgsm output folder; refusing to replace it",
                              dir.string()));
    }
  }
  fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec || ::access(parent.c_str(), W_OK) != 0) {
    throw Error(fmt::format("cannot write --out '{}': folder '{}' is not writable", dir.string(), parent.string()));
  }
}

void write_output_dir(const fs::path& dir, const std::function<void(const fs::path& tmp)>& fill) {
  check_output_dir(dir);
  fs::path tmp = make_temp_dir_beside(dir);
  try {
    fill(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  commit_output_dir(tmp, dir);
}

void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale) {
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  auto delta = (adv - clean).to(torch::kFloat32);
  // Perturbation amplified: 0.5 + delta / (2 max|delta|) per image, so its sign and shape show.
  auto amp = delta.abs().flatten(1).amax(1).clamp_min(1e-12).view({n, 1, 1, 1});
  auto pert = (0.5 + delta / (2 * amp)).clamp(0, 1);
  auto row = torch::cat({clean.to(torch::kFloat32), adv.to(torch::kFloat32), pert}, 3);  // n x c x h x 3w
  auto sheet = row.permute({1, 0, 2, 3}).reshape({c, n * h, 3 * w});                        // c x nh x 3w
  if (c == 1) sheet = sheet.expand({3, n * h, 3 * w});
  sheet = sheet.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  auto u8 = torch::round(sheet.clamp(0, 1) * 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  const int height = static_cast<int>(u8.size(0)), width = static_cast<int>(u8.size(1));
  if (stbi_write_png(file.c_str(), width, height, 3, u8.data_ptr<uint8_t>(), width * 3) == 0) {
    throw Error(fmt::format("cannot write '{}'", file.string()));
  }
}

void write_attack_outputs(const AttackRunResult& r, const nlohmann::json& run_info, const fs::path& dir,
                          const torch::Tensor& sheet_clean) {
  write_output_dir(dir, [&](const fs::path& tmp) {
    nlohmann::json metrics = run_info;
    metrics["summary"] = r.summary();
    metrics["attack_config"] = r.config;
    write_file_atomic(tmp / "metrics.json", metrics.dump(2) + "\n");
    write_file_atomic(tmp / "samples.csv", r.samples_csv());
    if (r.adversarial.defined()) {
      auto bytes = torch::pickle_save(r.adversarial.contiguous());
      write_file_atomic(tmp / "adversarial.pt", std::string_view(bytes.data(), bytes.size()));
      if (sheet_clean.defined() && sheet_clean.size(0) > 0) {
        const int64_t k = std::min(sheet_clean.size(0), r.adversarial.size(0));
        write_sheet_png(sheet_clean.narrow(0, 0, k), r.adversarial.narrow(0, 0, k), tmp / "sheet.png");
      }
    }
  });
}

std::string comparison_markdown(const std::vector<nlohmann::json>& summaries) {
  std::string out =
      "| attack | ASR | l2 mean | l2 median | l_inf | l_0 | SSIM | PSNR (dB) | ASR 8-bit | l2 8-bit | SSIM 8-bit | "
      "iters | img/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : summaries) {
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    out += fmt::format("| {} | {:.1f}% | {:.3f} | {:.3f} | {:.4f} | {:.3f} | {:.4f} | {:.2f} | {:.1f}% | {:.3f} | {:.4f} | "
                       "{:.2f} | {:.0f} |\n",
                       s.value("label", s["attack"].get<std::string>()), 100 * f["asr"].get<double>(),
                       f["l2_mean"].get<double>(), f["l2_median"].get<double>(), f["linf_max"].get<double>(),
                       f["l0_mean"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                       100 * q["asr"].get<double>(), q["l2_mean"].get<double>(), q["ssim_mean"].get<double>(),
                       s["iterations_mean"].get<double>(), s["images_per_second"].get<double>());
  }
  return out;
}

}  // namespace sdsgsm
