// `sdsgsm reproduce` (see reproduce.hpp), the execute step: the plan (reproduce_plan.cpp) run model
// by model into one all-or-nothing output folder; the writing is the report's
// (reproduce_section.cpp).
#include "sdsgsm/reproduce.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/frontier.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/reproduce_plan.hpp"
#include "sdsgsm/reproduce_section.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_curve_report.hpp"
#include "sdsgsm/robust_report.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/run_info.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sweep.hpp"
#include "sdsgsm/transfer.hpp"

namespace sdsgsm {
namespace {

/// The transfer attacks' fixed-iteration runs (their first transfer_n images, adversarials
/// included), by attack and by the model they were made on.
using TransferRuns = std::map<std::string, std::map<std::string, AttackRunResult>>;

/// The frontier of one model (sdsgsm/frontier.hpp) on the first frontier_count images.
std::vector<FrontierPoint> frontier_for(const ReproduceOptions& o, const ReproducePlan& rp, Classifier& model,
                                        const RunOptions& ro, const nlohmann::json& tuned) {
  FrontierOptions fo;
  fo.data = o.data;
  fo.offset = o.offset;
  fo.count = std::min(o.frontier_count, o.count);
  fo.tuning_count = std::max<int64_t>(1, fo.count / 2);
  fo.eps = rp.attacks.base.eps;
  fo.sd = o.sd;
  fo.run = ro;
  double alpha = 0;
  if (!tuned.is_null()) {
    const nlohmann::json rows = tuned["regimes"].value(kEarlyStopRegime.key, nlohmann::json::object());
    if (rows.is_object() && rows.contains(kIfgsm) && !rows[kIfgsm].is_null()) {
      alpha = SweepRow::from_json(rows[kIfgsm]).alpha;
    }
  }
  return run_frontier(model, fo, alpha, [&](const FrontierPoint& p) {
    if (o.progress) {
      fmt::print(stderr, "frontier {}: {} {:.1f} passes, 8-bit ASR {:.1f}%, median 8-bit l2 {:.3f}\n", model.name(),
                 p.label, p.passes, 100 * p.asr_8bit, p.l2_8bit_median);
    }
  });
}

/// Robust accuracy of a defended model under the ensemble at the comparison's eps, and at the
/// smaller radii of its curve (`radii`, the last one eps), into `dir` (resumable by batch); returns
/// its section and sets `json`.
std::string robust_for(const ReproduceOptions& o, const std::vector<double>& radii, Classifier& model,
                       const RunOptions& ro, int64_t count, const fs::path& dir, nlohmann::json& json) {
  RobustOptions r;
  r.set_eps(radii.back()).set_queries(o.robust_queries).set_batch_size(o.batch_size);
  r.set_first_index(o.offset).set_progress(o.progress).set_check_count(std::min<int64_t>(50, count));
  r.device = ro.device;
  fs::create_directories(dir);
  auto source = open_image_source(o.data, Split::Test, o.offset, count);
  const nlohmann::json info = run_info(model, *source, "test", o.offset, o.batch_size);
  const auto title_of = [&](const RobustResult& res) {
    std::vector<std::string> labels;
    for (const auto& stage : res.stages) labels.push_back(stage.label);
    return reproduce_robust_title(labels, o.robust_queries);
  };
  if (radii.size() == 1) {
    const RobustResult res = robust_accuracy(model, *source, r, dir);
    const std::string title = title_of(res);
    write_robust_files(dir, info, r.to_json(), res, title);
    json = res.to_json();
    return reproduce_robust_section(res.table(title), model.name(), count, o.eps, r.steps, o.robust_queries);
  }
  const RobustCurve curve = robust_curve(model, *source, r, radii, dir);
  const std::string title = title_of(curve.result);
  write_robust_curve_files(dir, info, r.to_json(), curve, r.norm, title);
  json = curve.result.to_json();
  json["curve"] = robust_curve_json(curve);
  for (auto& point : json["curve"]) point.erase("seconds");  // results.json holds no times
  return reproduce_robust_curve_section(robust_curve_table(curve, r.norm, title), curve.result.summary(), model.name(),
                                        count, o.eps, r.steps, o.robust_queries);
}

/// The transfer matrices of the runs kept, on every model; writes transfer.json and transfer.md.
std::string transfer_for(const ReproduceOptions& o, const std::vector<std::string>& every, const TransferRuns& runs,
                         int64_t n, const fs::path& dir, nlohmann::json& json) {
  std::vector<std::shared_ptr<Classifier>> targets;
  for (const auto& m : every) {
    targets.push_back(load_classifier(m));
    targets.back()->to(o.device);
  }
  const Dataset data = open_dataset(o.data, Split::Test, o.offset, n);
  const torch::Tensor clean = data.images.to(torch::kFloat32).div(255);
  std::vector<TransferCell> cells;
  for (const auto& attack : o.transfer) {
    auto by_model = runs.find(attack);
    if (by_model == runs.end()) continue;
    for (const auto& source : every) {
      auto run = by_model->second.find(source);
      if (run == by_model->second.end()) continue;
      for (size_t t = 0; t < every.size(); ++t) {
        cells.push_back(transfer_cell(run->second, clean.slice(0, 0, run->second.size()), *targets[t], source,
                                      every[t], o.batch_size, o.device));
      }
    }
  }
  json = nlohmann::json::array();
  for (const auto& c : cells) json.push_back(c.to_json());
  write_file_atomic(dir / "transfer.json", json.dump(2) + "\n");
  const std::string md = reproduce_transfer_section(n, o.eps, transfer_tables(cells));
  write_file_atomic(dir / "transfer.md", md);
  return md;
}

/// Runs one model's entries into `work`/<model>/: each run, its eps curve and minimal eps, and
/// keeps the transfer attacks' runs.
ReproduceModelRuns run_model(const ReproduceOptions& o, const ReproducePlan& rp, const std::string& name,
                             bool defended, Classifier& model, const RunOptions& ro, const fs::path& work,
                             TransferRuns& transfer_runs) {
  SensitivityCaches caches;
  const auto entries = defended ? strength_entries(rp.attacks, rp.strength_n, caches)
                                : comparison_entries(rp.attacks, rp.tuned.at(name), caches);
  ReproduceModelRuns m;
  m.results.reserve(entries.size());
  for (const auto& e : entries) {
    auto data = open_image_source(o.data, Split::Test, o.offset, e.count > 0 ? std::min(e.count, o.count) : o.count);
    const nlohmann::json info = run_info(model, *data, "test", o.offset, o.batch_size);
    auto attack = e.make(rp.attacks.base.eps);
    RunOutput out;
    // <model>/<regime>-<label>: the report finds runs two levels down, with curves.json beside them.
    out.work = work / reproduce_folder_name(name) / (std::string(e.regime.key) + "-" + reproduce_folder_name(e.label));
    out.info = info;
    out.fingerprint = info;
    out.fingerprint["model_md5"] = rp.fingerprint["model_md5"][name];
    out.fingerprint["attack_config"] = attack->config();
    AttackRunResult r = run_attack(model, *data, *attack, ro, &out);
    if (e.eps_curve && !rp.eps_list.empty()) {
      // One result per eps (Foolbox's epsilons), on the first images, without outputs; each
      // attack keeps its own step rule at every eps.
      auto few = open_dataset(o.data, Split::Test, o.offset, std::min(o.eps_curve_count, o.count));
      EpsCurve curve = run_eps_curve(model, few, e.regime.run_name(e.label), rp.eps_list, e.make, ro);
      if (dist::is_root()) m.eps_curves.push_back(curve);
      if (dist::is_root() && !defended) {
        // Each image's smallest eps (bisection up to --eps) on the same images.
        m.min_eps_rows.push_back(run_min_eps(model, few, e.make, r, rp.attacks.base.eps, 5, ro, out.work));
        m.min_eps_rows.back()["label"] = e.label;
        m.min_eps_rows.back()["regime"] = e.regime.key;
      }
    }
    if (!dist::is_root()) continue;
    if (e.regime == kFixedRegime && std::find(o.transfer.begin(), o.transfer.end(), e.attack) != o.transfer.end()) {
      const int64_t n = std::min(rp.transfer_n, r.size());
      AttackRunResult t = first_samples(r, n);
      t.adversarial = read_adversarial(out.work, n).slice(0, 0, n);
      transfer_runs[e.attack].emplace(name, std::move(t));
    }
    auto s = r.report();
    s["label"] = e.label;
    s["group"] = e.group;
    s["regime"] = e.regime.key;
    s["config"] = r.config;
    m.rows.push_back(s);
    m.ids.push_back(e.id);
    m.results.push_back(std::move(r));
  }
  return m;
}

/// Each run folder keeps the adversarials of its first batch only (the report's example images):
/// every figure is recomputed from samples.csv, and the folder of a full run stays small.
void keep_first_adversarial_shard(const fs::path& dir) {
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_directory() || it->path().filename() != "adversarial") continue;
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(it->path())) shards.push_back(e.path());
    std::sort(shards.begin(), shards.end());
    for (size_t i = 1; i < shards.size(); ++i) fs::remove(shards[i]);
  }
}

}  // namespace

std::string reproduce(const ReproduceOptions& o) {
  // Plan: the attacks, the models' tuned settings, the fingerprint a resume must match.
  const ReproducePlan rp = plan_reproduce(o);
  PartialFolder folder(o.out, rp.fingerprint, o.resume, o.restart);
  std::string md = reproduce_intro(o.models, o.count, o.offset, o.eps, o.steps);
  nlohmann::json all;
  all["attack_options"] = rp.attacks.base.to_json();
  all["sdsgsm_options"] = o.sd.to_json();
  all["ranks"] = dist::size();
  all["threads_per_rank"] = torch::get_num_threads();
  const auto t_start = std::chrono::steady_clock::now();
  TransferRuns transfer_runs;
  for (size_t mi = 0; mi < rp.every.size(); ++mi) {
    const std::string& name = rp.every[mi];
    const bool defended = mi >= o.models.size();
    auto model = load_classifier(name);
    model->to(o.device);
    RunOptions ro;
    ro.batch_size = o.batch_size;
    ro.progress = o.progress;
    ro.first_index = o.offset;
    ro.device = o.device;
    // Execute, then write: the model's runs, then its section and files.
    const ReproduceModelRuns runs = run_model(o, rp, name, defended, *model, ro, folder.work(), transfer_runs);
    if (!dist::is_root()) continue;
    const fs::path model_dir = folder.work() / reproduce_folder_name(name);
    nlohmann::json& json = all["models"][name];
    ReproduceModelInfo info;
    info.name = name;
    info.display_name = model->name();
    info.defended = defended;
    info.tuned = defended || !rp.tuned.at(name).is_null();
    info.images = defended ? rp.strength_n : o.count;
    info.eps = o.eps;
    info.steps = o.steps;
    info.eps_curve_images = std::min(o.eps_curve_count, o.count);
    md += write_reproduce_model(info, runs, model_dir, json);
    // The defended model's robust accuracy, the others' frontier: each runs and writes its own.
    if (defended) {
      md += robust_for(o, rp.robust_eps, *model, ro, rp.strength_n, model_dir / "robust", json["robust"]);
    } else if (o.frontier_count > 0) {
      const auto points = frontier_for(o, rp, *model, ro, rp.tuned.at(name));
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& p : points) pj.push_back(p.to_json());
      write_file_atomic(model_dir / "frontier.json", pj.dump(2) + "\n");
      write_file_atomic(model_dir / "frontier.csv", frontier_csv(points));
      json["frontier"] = pj;
      md += reproduce_frontier_section(name, std::min(o.frontier_count, o.count), frontier_markdown(points));
    }
  }
  if (dist::is_root() && !transfer_runs.empty()) {
    md += transfer_for(o, rp.every, transfer_runs, rp.transfer_n, folder.work(), all["transfer"]);
  }
  if (dist::is_root()) {
    all["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    keep_first_adversarial_shard(folder.work());  // the transfer runs have read theirs
    write_file_atomic(folder.work() / "results.md", md);
    write_file_atomic(folder.work() / "results.json", all.dump(2) + "\n");
    write_folder_report(folder.work());
  }
  folder.commit();
  return dist::is_root() ? md : std::string();
}

}  // namespace sdsgsm
