// `sdsgsm compare` (compare.hpp): the attacks' runs, their eps curves and minimal eps, then the
// table, the figures and the report.
#include "sdsgsm/compare.hpp"

#include <fmt/format.h>

#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/tables.hpp"

namespace sdsgsm {
namespace {

/// curves.csv/json and paired.csv/json of a comparison (sdsgsm/curves.hpp); returns the paired
/// table as a markdown section.
std::string comparison_figures(const fs::path& dir, const std::vector<AttackRunResult>& results, uint64_t seed,
                               const std::vector<EpsCurve>& eps) {
  std::vector<std::string> labels;
  std::vector<const AttackRunResult*> runs;
  for (const auto& r : results) {
    labels.push_back(r.attack);
    runs.push_back(&r);
  }
  BootstrapOptions b;
  b.seed = seed;
  return fmt::format("\nPaired l2 per image (over the images both attacks fool; bootstrap {} resamples, seed {}):\n\n{}",
                     b.resamples, b.seed, write_comparison_figures(dir, labels, runs, eps, b));
}

}  // namespace

std::string run_compare(const CompareJob& job) {
  nlohmann::json fp = job.fingerprint;
  for (const auto& a : job.attacks) fp["attacks"].push_back(a.attack->config());
  PartialFolder folder(job.out, fp, job.resume, job.restart);
  std::vector<nlohmann::json> reports;
  std::vector<AttackRunResult> results;
  for (const auto& a : job.attacks) {
    RunOutput out;
    out.work = folder.work() / a.attack->name();
    out.info = job.info;
    out.fingerprint = job.fingerprint;
    out.fingerprint["attack_config"] = a.attack->config();
    out.adversarial = job.adversarial;
    out.sheet = job.sheet;
    AttackRunResult r = run_attack(*job.model, *job.data, *a.attack, job.run, &out);
    if (dist::is_root()) {
      reports.push_back(r.report());
      results.push_back(std::move(r));
    }
  }
  std::vector<EpsCurve> curves;
  nlohmann::json min_eps = nlohmann::json::object();
  if (!job.epsilons.empty() || job.min_eps) {
    // The eps runs are collective under mpirun (every rank attacks its batches); the minimal
    // eps search runs on rank 0 alone, which holds every result.
    const Dataset d = job.dataset();
    for (size_t i = 0; i < job.attacks.size(); ++i) {
      const CompareAttack& a = job.attacks[i];
      if (!a.curve_at) continue;
      if (!job.epsilons.empty()) {
        curves.push_back(run_eps_curve(*job.model, d, a.attack->name(), job.epsilons, a.curve_at, job.run));
      }
      if (job.min_eps && dist::is_root()) {
        const fs::path dir = folder.work() / a.attack->name();
        auto s = run_min_eps(*job.model, d, a.min_eps_at, results[i], job.shared.eps, job.min_eps_rounds, job.run, dir);
        write_file_atomic(dir / "min_eps.json", s.dump(2) + "\n");
        min_eps[a.attack->name()] = s;
      }
    }
    if (job.min_eps && dist::is_root()) write_file_atomic(folder.work() / "min_eps.json", min_eps.dump(2) + "\n");
  }
  std::string report;
  if (dist::is_root()) {
    const std::string table = comparison_markdown(reports);
    nlohmann::json j = job.info;
    j["attack_options"] = job.shared.to_json();
    j["results"] = reports;
    j["ranks"] = dist::size();
    j["threads_per_rank"] = torch::get_num_threads();
    write_file_atomic(folder.work() / "compare.json", j.dump(2) + "\n");
    const std::string header = comparison_heading(job.model->name(), job.data->size(), job.data->source(),
                                                  job.shared.eps, job.steps, job.shared.early_stop);
    const std::string paired = comparison_figures(folder.work(), results, job.seed, curves);
    write_file_atomic(folder.work() / "compare.md", header + table + paired);
    write_folder_report(folder.work());
    report = header + table + paired + "\n";
  }
  folder.commit();
  return report;
}

}  // namespace sdsgsm
