// The runner (include/sdsgsm/runner.hpp): images in batches through the attack and the metrics,
// split across ranks under mpirun; rank 0 keeps the results in batch order and writes the run
// folder (run_folder.cpp).
#include <chrono>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "../results/run_internal.hpp"
#include "sdsgsm/checks.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/runner.hpp"

namespace sdsgsm {
namespace {

using detail::BatchPacket;
using detail::Tally;

/// Attacks batch `b` (images [b * bs, ...)) and measures it.
BatchPacket attack_batch(Classifier& model, const ImageSource& source, const Attack& attack, const RunOptions& o,
                         int64_t b) {
  const int64_t start = b * o.batch_size;
  const int64_t n = std::min(o.batch_size, source.size() - start);
  auto [x, y] = source.read_float(start, n);
  auto ids = torch::arange(o.first_index + start, o.first_index + start + n, torch::kInt64);
  auto t0 = std::chrono::steady_clock::now();
  AttackResult a = attack.run(model, x.to(o.device), y.to(o.device), ids.to(o.device));
  BatchPacket p;
  p.tally.attack_seconds = seconds_since(t0);
  p.tally.allocation_seconds = a.allocation_seconds;
  p.tally.zero_gradient = a.zero_gradient_samples;
  const auto t1 = std::chrono::steady_clock::now();
  auto adv = a.adversarial.to(torch::kCPU);
  auto adv8 = quantize_8bit(adv);
  auto pred8 = predict(model, adv8.to(o.device)).to(torch::kCPU);
  const bool targeted = attack.options().targeted != TargetMode::None;
  // This batch's per-sample values; sample_rows lays them out as the column table says.
  AttackRunResult s;
  s.index = ids;
  s.label = y;
  s.target = a.target.to(torch::kCPU);
  s.clean_pred = a.clean_pred.to(torch::kCPU);
  s.adv_pred = a.adv_pred.to(torch::kCPU);
  s.success = a.success.to(torch::kCPU);
  s.iterations = a.iterations.to(torch::kCPU);
  s.l2 = l2_distance(x, adv);
  s.linf = linf_distance(x, adv);
  s.l0 = l0_fraction(x, adv);
  s.ssim = ssim(x, adv);
  s.psnr = psnr(x, adv);
  s.adv_pred_8bit = pred8;
  s.success_8bit = attack_success(pred8, targeted ? s.target : y, targeted);
  s.forward_passes = a.forward_passes.to(torch::kCPU);
  s.backward_passes = a.backward_passes.to(torch::kCPU);
  s.l2_8bit = l2_distance(x, adv8);
  s.linf_8bit = linf_distance(x, adv8);
  s.l0_8bit = l0_fraction(x, adv8);
  s.ssim_8bit = ssim(x, adv8);
  s.psnr_8bit = psnr(x, adv8);
  p.columns = sample_rows(s);
  p.tally.metrics_seconds = seconds_since(t1);
  p.adversarial = adv.contiguous();
  return p;
}

/// What run_attack returns on ranks other than 0: no samples.
AttackRunResult empty_result(const Attack& attack) {
  AttackRunResult r;
  r.attack = attack.name();
  r.config = attack.config();
  set_sample_rows(r, torch::zeros({0, static_cast<int64_t>(sample_columns().size())}, torch::kFloat64));
  return r;
}

}  // namespace

void RunOptions::validate() const { check_batch_size(batch_size); }

AttackRunResult run_attack(Classifier& model, const ImageSource& source, const Attack& attack, const RunOptions& o,
                           const RunOutput* output) {
  o.validate();
  const int64_t n = source.size();
  if (n == 0) throw Error("no images to attack");
  const bool root = dist::is_root();
  const int ranks = dist::size(), me = dist::rank();
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;
  const bool write = output != nullptr && root;
  if (output != nullptr) {
    if (output->fingerprint.value("batch_size", int64_t{-1}) != o.batch_size) {
      throw Error("internal: a run's fingerprint must hold its batch size");
    }
    // A run finished earlier (e.g. interrupted between finishing and renaming its folder).
    int64_t finished = write && fs::exists(output->work / "metrics.json") ? 1 : 0;
    if (dist::broadcast(finished)) {
      if (!root) return empty_result(attack);
      AttackRunResult r;
      r.attack = attack.name();
      r.config = attack.config();
      return detail::read_finished(*output, std::move(r));
    }
  }
  auto start = std::chrono::steady_clock::now();
  AttackRunResult r;
  {
    // The evaluation checks, on the first images of the first batch (every rank: an error stops
    // them all; within batch 0 so that a bad record further on is reported by the rank whose batch
    // holds it).
    auto [images, labels] = source.read_float(0, std::min({n, o.batch_size, int64_t{16}}));
    r.warnings = check_model(model, images.to(o.device), labels.to(o.device),
                             static_cast<int64_t>(source.classes().size()));
    if (root) {
      for (const auto& w : r.warnings) spdlog::warn("{}", w);
    }
  }
  std::optional<detail::WorkFolder> folder;
  if (write) folder.emplace(*output, batches, o.batch_size);
  const int64_t first = dist::broadcast(folder ? folder->done() : 0);

  r.attack = attack.name();
  r.config = attack.config();
  const int64_t success_column = sample_column_index(&AttackRunResult::success);
  std::vector<torch::Tensor> rows = folder ? folder->rows() : std::vector<torch::Tensor>{};
  std::vector<torch::Tensor> advs;
  Tally total = folder ? folder->resumed() : Tally{};
  int64_t successes = 0, done_images = std::min(n, first * o.batch_size);
  for (const auto& t : rows) successes += t.select(1, success_column).sum().item<int64_t>();
  Progress bar(attack.name(), n, o.progress && root);
  if (done_images > 0) bar.advance(done_images, "resumed");
  int64_t session_images = 0;

  auto take = [&](int64_t b, const BatchPacket& p) {
    if (folder) folder->write(b, p);
    rows.push_back(p.columns);
    if (o.keep_adversarial) advs.push_back(p.adversarial);
    total += p.tally;
    successes += p.columns.select(1, success_column).sum().item<int64_t>();
    const int64_t b_images = p.columns.size(0);
    done_images += b_images;
    session_images += b_images;
    bar.advance(b_images, fmt::format("success {:.1f}%", 100.0 * successes / done_images));
  };
  // Batch b runs on rank b mod P; rank 0 takes the results of each round in batch order.
  for (int64_t round = first; round < batches; round += ranks) {
    const int64_t mine = round + me;
    BatchPacket p;
    if (mine < batches) p = attack_batch(model, source, attack, o, mine);
    if (root) {
      for (int r2 = 0; r2 < ranks && round + r2 < batches; ++r2) {
        if (r2 == 0) {
          take(mine, p);
        } else {
          take(round + r2, detail::decode(dist::recv_bytes(r2), true, "a rank's batch"));
        }
      }
    } else if (mine < batches) {
      dist::send_bytes(0, detail::encode(p));
    }
  }
  if (!root) return empty_result(attack);

  auto all = rows.empty() ? torch::zeros({0, static_cast<int64_t>(sample_columns().size())}, torch::kFloat64)
                          : torch::cat(rows);
  set_sample_rows(r, all);
  if (o.keep_adversarial && !advs.empty()) r.adversarial = torch::cat(advs);
  r.zero_gradient_samples = total.zero_gradient;
  r.attack_seconds = total.attack_seconds;
  r.allocation_seconds = total.allocation_seconds;
  r.metrics_seconds = total.metrics_seconds;
  r.images_this_session = session_images;
  r.wall_seconds = seconds_since(start);  // attack and metrics; writing the finished folder is not counted
  const std::string zero = zero_gradient_warning(r.attack, r.zero_gradient_samples, n);
  if (!zero.empty()) r.warnings.push_back(zero);
  const RunSummary stats = r.stats();
  const std::string few = few_correct_warning(stats.clean_correct, stats.images);
  if (!few.empty()) r.warnings.push_back(few);
  if (write) detail::finish_folder(r, *output, source, o.batch_size, all);
  bar.finish("ASR " + figure_or_na(100 * stats.float_stats.asr, "{:.2f}%"));
  if (!zero.empty()) spdlog::warn("{}", zero);
  if (!few.empty() && root) spdlog::warn("{}", few);
  return r;
}

AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options) {
  return run_attack(model, *memory_source(data), attack, options, nullptr);
}

}  // namespace sdsgsm
