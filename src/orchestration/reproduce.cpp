// `sdsgsm reproduce` (see reproduce.hpp): the plan of attacks per model, their runs into one
// all-or-nothing output folder, curves, paired statistics and results.md / results.json.
#include "sdsgsm/reproduce.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sdsgsm/curves.hpp"
#include "sdsgsm/frontier.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_report.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sweep.hpp"
#include "sdsgsm/transfer.hpp"
#include "sdsgsm/tuning.hpp"

namespace sdsgsm {
namespace {

/// One attack run of the comparison.
struct Entry {
  std::string regime;  ///< "fixed", "early_stop" or "minimum_norm"
  std::string group;   ///< "textbook", "tuned", "SD-SGSM family, tuned", "shipped defaults", "minimum norm"
  std::string label;
  std::function<std::unique_ptr<Attack>(double eps)> make;  ///< the attack at a budget
  int64_t count = 0;      ///< images (from the first); 0: all
  bool eps_curve = false;  ///< also run at every eps of the eps list
  std::string attack;      ///< its registry name (--min-norm's for those); the transfer matrices pick by it
  std::string id;          ///< stable within a model: REGIME/KIND/KEY ("fixed/tuned/sdsgsm"), never a display label
};

const char* regime_title(const std::string& regime) {
  if (regime == "fixed") return "Fixed iterations (every attack runs all steps)";
  if (regime == "early_stop") return "Early stop (each sample stops at its first success)";
  return "Minimum-norm attacks (unbounded)";
}

/// A minimum-norm attack by its name in --min-norm: a minimum-norm attack of the registry on its
/// default norm (deepfool, cw, ddn), or NAME-l2 / NAME-linf in that norm (fmn-l2, fmn-linf), on its
/// default options.
std::unique_ptr<Attack> make_min_norm(const std::string& spec, const AttackOptions& base) {
  MinNormOptions mn;
  std::string name = spec;
  for (const auto& [suffix, norm] : {std::pair<std::string, Norm>{"-l2", Norm::L2}, {"-linf", Norm::Linf}}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      name.resize(name.size() - suffix.size());
      mn.set_norm(norm);
      break;
    }
  }
  std::vector<std::string> min_norm;  // the registry's minimum-norm attacks
  for (const auto& a : attack_registry()) {
    if (a.family == AttackFamily::MinimumNorm) min_norm.push_back(a.name);
  }
  if (std::find(min_norm.begin(), min_norm.end(), name) == min_norm.end()) {
    throw Error(fmt::format("--min-norm: unknown attack '{}' (known: {}, each also as NAME-l2 or NAME-linf)", spec,
                            fmt::join(min_norm, ", ")));
  }
  return make_attack(name, base, SdsgsmOptions(), mn);
}


/// A tuned.json, checked enough to fail with its name.
nlohmann::json parse_tuned(const fs::path& file) {
  try {
    auto j = nlohmann::json::parse(read_file(file));
    if (!j.contains("regimes") || !j["regimes"].is_object()) throw Error("no 'regimes' object");
    return j;
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: not a tuned-settings file written by 'sdsgsm tune' ({})", file.string(), e.what()));
  }
}


struct Plan {
  AttackOptions base;
  SdsgsmOptions sd;
  int64_t min_norm_count = 0, min_norm_steps = 100;
  std::vector<std::string> min_norm;
};

using Caches = std::map<std::string, std::shared_ptr<SensitivityCache>>;

/// The DDI maps shared by the runs of one model on the same DDI grid.
std::shared_ptr<SensitivityCache> cache_for(Caches& caches, const SdsgsmOptions& sd) {
  auto& c = caches[sd.ddi.to_json().dump()];
  if (!c) c = std::make_shared<SensitivityCache>(sd.ddi);
  return c;
}

/// The sign-step baselines of the comparison, textbook settings, in table order.
std::vector<std::string> textbook_attacks() { return attack_names(kTextbook); }

/// The SD-SGSM family's rows on the shipped defaults (the ablation of the defended model's table).
std::vector<std::string> family_variants() { return attack_names(kSdFamily); }

std::string defaults_label(const std::string& variant) { return attack_info(variant).label + " (defaults)"; }

/// The strength table's attacks for a defended model: the textbook baselines and the SD-SGSM family
/// on their defaults (fixed iterations), then APGD-CE and APGD-DLR on theirs; `count` images.
std::vector<Entry> strength_entries(const Plan& p, int64_t count, Caches& caches) {
  std::vector<Entry> out;
  const AttackOptions fixed = AttackOptions(p.base).set_early_stop(false);  // SD-SGSM's defaults stop early
  for (const auto& name : textbook_attacks()) {
    out.push_back({"fixed", "textbook", attack_info(name).label,
                   [name, ao = fixed](double eps) { return make_attack(name, AttackOptions(ao).set_eps(eps)); },
                   count, true, name, "fixed/textbook/" + name});
  }
  for (const auto& variant : family_variants()) {
    auto c = attack_info(variant).has(kDdiMap) ? cache_for(caches, p.sd) : nullptr;  // SGSM's map is uniform
    out.push_back({"fixed", "shipped defaults", defaults_label(variant),
                   [variant, ao = fixed, sd = p.sd, c](double eps) {
                     return make_sdsgsm_variant(variant, AttackOptions(ao).set_eps(eps), sd, c);
                   },
                   count, true, variant, "fixed/defaults/" + variant});
  }
  const auto adaptive = attack_names(kStrength);
  for (const auto& name : adaptive) {
    // APGD on its own defaults (100 steps, its step-size schedule): only the budget is shared.
    const AttackOptions ao = AttackOptions().set_seed(p.base.seed).set_steps(attack_info(name).default_steps);
    out.push_back({"fixed", "APGD", attack_info(name).label,
                   [name, ao](double eps) { return make_attack(name, AttackOptions(ao).set_eps(eps)); }, count,
                   name == adaptive.front(), name, "fixed/adaptive/" + name});  // the eps curve of the first (APGD-CE)
  }
  return out;
}

/// The comparison's attacks for one model; `tuned` is its tuned.json (null: not tuned, the
/// tuned groups are left out and the tables say so). `caches` share each DDI grid's maps
/// between the runs of one model.
std::vector<Entry> plan_entries(const Plan& p, const nlohmann::json& tuned,
                                Caches& caches) {
  std::vector<Entry> out;
  for (const std::string regime : {"fixed", "early_stop"}) {
    const bool es = regime == "early_stop";
    for (const auto& name : textbook_attacks()) {
      if (es && attack_info(name).default_steps == 1) continue;  // FGSM's one step: early stop changes nothing
      AttackOptions ao = p.base;
      ao.set_early_stop(es);
      out.push_back({regime, "textbook", attack_info(name).label,
                     [name = name, ao](double eps) { return make_attack(name, AttackOptions(ao).set_eps(eps)); }, 0, es,
                     name, regime + "/textbook/" + name});
    }
    {
      AttackOptions ao = p.base;
      ao.set_early_stop(es);
      auto sd = p.sd;
      out.push_back({regime, "shipped defaults", defaults_label(kSdsgsm),
                     [ao, sd, c = cache_for(caches, sd)](double eps) {
                       return make_sdsgsm_variant(kSdsgsm, AttackOptions(ao).set_eps(eps), sd, c);
                     },
                     0, es, kSdsgsm, regime + "/defaults/" + kSdsgsm});
    }
    if (tuned.is_null()) continue;
    for (const auto& item : tuning_plan()) {
      // A regime or an attack the file lacks (e.g. 'tune --regimes fixed') is left out.
      const nlohmann::json rows = tuned["regimes"].value(regime, nlohmann::json::object());
      const nlohmann::json row = rows.is_object() ? rows.value(item.key, nlohmann::json()) : nlohmann::json();
      if (row.is_null()) continue;  // none met the rule: reported by tuning.md
      const bool family = is_sdsgsm_family(item.variant);
      const std::string label = family ? item.label : item.label + " (tuned)";
      const SweepRow r = SweepRow::from_json(row);
      auto c = attack_info(item.variant).has(kDdiMap) ? cache_for(caches, r.sd) : nullptr;
      out.push_back({regime, family ? "SD-SGSM family, tuned" : "tuned", label,
                     [r, base = p.base, c](double eps) { return r.make(AttackOptions(base).set_eps(eps), c); }, 0, es,
                     item.variant, regime + "/tuned/" + item.key});
    }
  }
  for (const auto& spec : p.min_norm) {
    out.push_back({"minimum_norm", "minimum norm", spec,
                   [spec, base = AttackOptions(p.base).set_steps(p.min_norm_steps)](double) {
                     return make_min_norm(spec, base);
                   },
                   p.min_norm_count, false, spec, "minimum_norm/" + spec});
  }
  return out;
}

/// The row the others are compared with in a regime, by the rows' ids: the tuned SD-SGSM (its
/// coarse DDI grid, tuning key sdsgsm), else its defaults; -1: none.
int64_t reference_row(const std::vector<std::string>& ids, const std::string& regime) {
  for (const std::string kind : {"/tuned/", "/defaults/"}) {
    const auto it = std::find(ids.begin(), ids.end(), regime + kind + kSdsgsm);
    if (it != ids.end()) return static_cast<int64_t>(it - ids.begin());
  }
  return -1;
}

/// The first n samples of a run (the minimum-norm attacks run on the first images only).
AttackRunResult head(const AttackRunResult& r, int64_t n) {
  AttackRunResult h = r;
  if (n <= 0 || n >= r.size()) return h;
  for (const auto& c : sample_columns()) {
    torch::Tensor& t = h.*c.member;
    if (t.defined()) t = t.slice(0, 0, n);
  }
  return h;
}

Plan make_plan(const ReproduceOptions& o) {
  Plan plan;
  plan.base.set_eps(parse_number(o.eps, "--eps")).set_steps(o.steps);
  plan.base.validate();
  plan.sd = o.sd;
  plan.min_norm = o.min_norm;
  plan.min_norm_count = o.min_norm_count;
  plan.min_norm_steps = o.min_norm_steps;
  return plan;
}

}  // namespace

std::vector<std::string> default_min_norm_attacks() {
  return {kDeepfool, kCw, kDdn, std::string(kFmn) + "-l2", std::string(kFmn) + "-linf"};
}

void ReproduceOptions::validate() const {
  if (models.empty()) throw Error("--models names no model");
  check_batch_size(batch_size);
  AttackOptions().set_eps(parse_number(eps, "--eps")).set_steps(steps).validate();
  sd.validate(-1, -1);
  if (min_norm_steps < 1) throw Error(fmt::format("--min-norm-steps must be >= 1 (got {})", min_norm_steps));
  for (const auto& spec : min_norm) make_min_norm(spec, AttackOptions());  // unknown names fail here
  for (const auto& e : eps_list) parse_number(e, "--eps-list");
  if (min_norm_count < 1) throw Error(fmt::format("--min-norm-count must be >= 1 (got {})", min_norm_count));
  if (eps_curve_count < 1) throw Error(fmt::format("--eps-curve-count must be >= 1 (got {})", eps_curve_count));
  if (frontier_count < 0) throw Error(fmt::format("--frontier-count must be >= 0 (got {})", frontier_count));
  if (strength_count < 1) throw Error(fmt::format("--strength-count must be >= 1 (got {})", strength_count));
  if (robust_queries < 1) throw Error(fmt::format("--robust-queries must be >= 1 (got {})", robust_queries));
  if (transfer_count < 1) throw Error(fmt::format("--transfer-count must be >= 1 (got {})", transfer_count));
  for (const auto& a : transfer) {
    // The transfer default is every attack with a fixed-iteration run on every model (textbook, SD-SGSM).
    const auto t = attack_names(kTransfer);
    if (std::find(t.begin(), t.end(), a) == t.end()) {
      throw Error(fmt::format("--transfer: '{}' has no fixed-iteration run in reproduce (known: {})", a,
                              fmt::join(t, ", ")));
    }
  }
  for (const auto& d : defended) {
    if (std::find(models.begin(), models.end(), d) != models.end()) {
      throw Error(fmt::format("--defended: '{}' is in --models too", d));
    }
  }
  if (tuned.size() > models.size()) {
    throw Error(fmt::format("--tuned names {} files for {} models", tuned.size(), models.size()));
  }
}

/// The frontier of one model (sdsgsm/frontier.hpp) on the first frontier_count images.
static std::vector<FrontierPoint> frontier_for(const ReproduceOptions& o, const Plan& plan, Classifier& model,
                                        const RunOptions& ro, const nlohmann::json& tuned) {
  FrontierOptions fo;
  fo.data = o.data;
  fo.offset = o.offset;
  fo.count = std::min(o.frontier_count, o.count);
  fo.tuning_count = std::max<int64_t>(1, fo.count / 2);
  fo.eps = plan.base.eps;
  fo.sd = o.sd;
  fo.run = ro;
  double alpha = 0;
  if (!tuned.is_null()) {
    const nlohmann::json rows = tuned["regimes"].value("early_stop", nlohmann::json::object());
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

/// The ASR-against-eps table of some curves (float ASR; 8-bit in curves.csv).
static std::string eps_table(const std::vector<EpsCurve>& curves, int64_t images) {
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

/// Robust accuracy of a defended model under the ensemble at the comparison's eps, into `dir`
/// (resumable by batch); returns its markdown and sets `json`.
static std::string robust_for(const ReproduceOptions& o, Classifier& model, const RunOptions& ro, int64_t count,
                              const fs::path& dir, nlohmann::json& json) {
  RobustOptions r;
  r.set_eps(parse_number(o.eps, "--eps")).set_queries(o.robust_queries).set_batch_size(o.batch_size);
  r.set_first_index(o.offset).set_progress(o.progress).set_check_count(std::min<int64_t>(50, count));
  r.device = ro.device;
  fs::create_directories(dir);
  auto source = open_image_source(o.data, Split::Test, o.offset, count);
  const RobustResult res = robust_accuracy(model, *source, r, dir);
  std::string labels;
  for (const auto& stage : res.stages) labels += (labels.empty() ? "" : ", ") + stage.label;
  const std::string title =
      fmt::format("### Robust accuracy under the ensemble ({} {} queries)", labels, o.robust_queries);
  nlohmann::json info = {{"model", model.name()}, {"model_kind", model.kind()}, {"data", source->source()},
                         {"split", "test"},        {"offset", o.offset},        {"count", source->size()},
                         {"batch_size", o.batch_size}, {"version", version_string()}};
  write_robust_files(dir, info, r.to_json(), res, title);
  json = res.to_json();
  return fmt::format("{}\nOn the first {} images at eps {}: APGD {} steps, 1 restart, APGD-T and FAB-T with 9 target classes; "
                     "Square with {} queries where AutoAttack's standard version uses 5,000. Each attack runs on the "
                     "images still robust; per image in {}/robust.csv.\n\n",
                     res.table(title), count, o.eps, r.steps, o.robust_queries,
                     reproduce_folder_name(model.name()) + "/robust");
}

/// The transfer matrices of the runs kept, on every model; writes transfer.json and transfer.md.
static std::string transfer_section(const ReproduceOptions& o, const std::vector<std::string>& every,
                                    const std::map<std::string, std::map<std::string, AttackRunResult>>& runs,
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
  const std::string tables = transfer_tables(cells);
  write_file_atomic(dir / "transfer.json", json.dump(2) + "\n");
  const std::string md = fmt::format(
      "## Transfer between models ({} images, eps {})\n\nEach attack's fixed-iteration adversarials (textbook "
      "settings; SD-SGSM on its defaults), made on one model and given to the others: a cell counts the images "
      "the attack fooled on the model it was made on that the other model classifies correctly.\n{}\n",
      n, o.eps, tables);
  write_file_atomic(dir / "transfer.md", md);
  return md;
}

namespace {

/// The plan of a reproduce run: the attacks (Plan), the models, their tuned settings, and what a
/// resume must match (the fingerprint).
struct ReproducePlan {
  Plan plan;
  std::vector<double> eps_list;
  nlohmann::json fingerprint;
  std::map<std::string, nlohmann::json> tuned;  ///< per compared model; null: not tuned
  std::vector<std::string> every;                ///< the compared models, then the defended ones
  int64_t strength_n = 0, transfer_n = 0;        ///< images of the strength table and the transfer matrices
};

ReproducePlan plan_reproduce(const ReproduceOptions& o) {
  o.validate();
  ReproducePlan rp;
  rp.plan = make_plan(o);
  for (const auto& e : o.eps_list) rp.eps_list.push_back(parse_number(e, "--eps-list"));
  const std::vector<std::string>& models = o.models;
  // Everything the tables depend on: a resume must match it.
  nlohmann::json fp = {{"models", models},
                       {"data", o.data},
                       {"offset", o.offset},
                       {"count", o.count},
                       {"batch_size", o.batch_size},
                       {"attack_options", rp.plan.base.to_json()},
                       {"sdsgsm_options", o.sd.to_json()},
                       {"min_norm", rp.plan.min_norm},
                       {"min_norm_count", o.min_norm_count},
                       {"min_norm_steps", o.min_norm_steps},
                       {"eps_list", rp.eps_list},
                       {"eps_curve_count", o.eps_curve_count},
                       {"frontier_count", o.frontier_count},
                       {"version", version_string()}};
  if (!o.defended.empty()) {
    // Only when there is a defended model: earlier reproduce folders keep their fingerprint.
    fp["defended"] = o.defended;
    fp["strength_count"] = o.strength_count;
    fp["robust_queries"] = o.robust_queries;
    for (const auto& m : o.defended) fp["model_md5"][m] = model_checksum(m);
  }
  if (!o.transfer.empty()) {
    fp["transfer"] = o.transfer;
    fp["transfer_count"] = o.transfer_count;
  }
  const std::vector<std::string>& tuned_files = o.tuned;
  for (size_t i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    fp["model_md5"][m] = model_checksum(m);
    const fs::path t = i < tuned_files.size() && !tuned_files[i].empty() ? fs::path(tuned_files[i])
                                                                          : find_tuned_settings(m);
    if (!t.empty() && !fs::is_regular_file(t)) throw Error(fmt::format("--tuned: no file {}", t.string()));
    rp.tuned[m] = t.empty() ? nlohmann::json() : parse_tuned(t);
    fp["tuned_md5"][m] = t.empty() ? std::string() : md5_hex(read_file(t));
  }
  rp.fingerprint = std::move(fp);
  rp.every = models;
  rp.every.insert(rp.every.end(), o.defended.begin(), o.defended.end());
  rp.strength_n = std::min(o.strength_count, o.count);
  rp.transfer_n = std::min(o.transfer_count, o.defended.empty() ? o.count : rp.strength_n);
  return rp;
}

/// The transfer attacks' fixed-iteration runs (their first transfer_n images, adversarials
/// included), by attack and by the model they were made on.
using TransferRuns = std::map<std::string, std::map<std::string, AttackRunResult>>;

/// What one model's entries produced (rank 0; the other ranks' stay empty).
struct ModelRuns {
  std::vector<nlohmann::json> rows;  ///< each run's report, with label, group, regime and config
  std::vector<std::string> ids;      ///< rows[i]'s entry id
  std::vector<AttackRunResult> results;
  std::vector<EpsCurve> eps_curves;
  std::vector<nlohmann::json> min_eps_rows;
};

/// Runs one model's entries into `work`/<model>/: each run, its eps curve and minimal eps, and
/// keeps the transfer attacks' runs.
ModelRuns run_model(const ReproduceOptions& o, const ReproducePlan& rp, const std::string& name, bool defended,
                    Classifier& model, const RunOptions& ro, const fs::path& work, TransferRuns& transfer_runs) {
  Caches caches;
  const auto entries =
      defended ? strength_entries(rp.plan, rp.strength_n, caches) : plan_entries(rp.plan, rp.tuned.at(name), caches);
  ModelRuns m;
  m.results.reserve(entries.size());
  for (const auto& e : entries) {
    auto data = open_image_source(o.data, Split::Test, o.offset, e.count > 0 ? std::min(e.count, o.count) : o.count);
    nlohmann::json info = {{"model", model.name()}, {"model_kind", model.kind()}, {"data", data->source()},
                           {"split", "test"},          {"offset", o.offset},       {"count", data->size()},
                           {"batch_size", o.batch_size},   {"version", version_string()}};
    auto attack = e.make(rp.plan.base.eps);
    RunOutput out;
    // <model>/<regime>-<label>: the report finds runs two levels down, with curves.json beside them.
    out.work = work / reproduce_folder_name(name) / (e.regime + "-" + reproduce_folder_name(e.label));
    out.info = info;
    out.fingerprint = info;
    out.fingerprint["model_md5"] = rp.fingerprint["model_md5"][name];
    out.fingerprint["attack_config"] = attack->config();
    AttackRunResult r = run_attack(model, *data, *attack, ro, &out);
    if (e.eps_curve && !rp.eps_list.empty()) {
      // One result per eps (Foolbox's epsilons), on the first images, without outputs; each
      // attack keeps its own step rule at every eps.
      auto few = open_dataset(o.data, Split::Test, o.offset, std::min(o.eps_curve_count, o.count));
      // Named as in the other curves.
      EpsCurve curve = run_eps_curve(model, few, reproduce_run_name({{"regime", e.regime}, {"label", e.label}}),
                                     rp.eps_list, e.make, ro);
      if (dist::is_root()) m.eps_curves.push_back(curve);
      if (dist::is_root() && !defended) {
        // Each image's smallest eps (bisection up to --eps) on the same images.
        m.min_eps_rows.push_back(run_min_eps(model, few, e.make, r, rp.plan.base.eps, 5, ro, out.work));
        m.min_eps_rows.back()["label"] = e.label;
        m.min_eps_rows.back()["regime"] = e.regime;
      }
    }
    if (!dist::is_root()) continue;
    if (e.regime == "fixed" && std::find(o.transfer.begin(), o.transfer.end(), e.attack) != o.transfer.end()) {
      const int64_t n = std::min(rp.transfer_n, r.size());
      AttackRunResult t = head(r, n);
      t.adversarial = read_adversarial(out.work, n).slice(0, 0, n);
      transfer_runs[e.attack].emplace(name, std::move(t));
    }
    auto s = r.report();
    s["label"] = e.label;
    s["group"] = e.group;
    s["regime"] = e.regime;
    s["config"] = r.config;
    m.rows.push_back(s);
    m.ids.push_back(e.id);
    m.results.push_back(std::move(r));
  }
  return m;
}

/// One model's section of results.md (its tables, the minimal eps, the paired differences) and
/// its curves.csv/json and paired.csv/json in `model_dir`; sets its rows and minimal eps in `json`.
std::string write_model(const ReproduceOptions& o, const ReproducePlan& rp, const std::string& name, bool defended,
                        const Classifier& model, const ModelRuns& m, const fs::path& model_dir, nlohmann::json& json) {
  const auto& rows = m.rows;
  const auto& results = m.results;
  std::string md;
  if (defended) {
    md += fmt::format(
        "## {} (defended; {} images, clean accuracy {:.2f}%)\n\nThe strength table: an adversarially trained "
        "model, where ASR is not free. Every attack at eps {} on the first {} images: the textbook baselines and "
        "the SD-SGSM family on their defaults ({} iterations), APGD on its own (100 steps). Tuning does not "
        "apply here (no setting reaches the rule's ASR >= 99.9%). ASR over the images the model classifies "
        "correctly; l2 and SSIM over the images each attack fools.\n\n",
        model.name(), rp.strength_n, 100 * rows[0]["clean_accuracy"].get<double>(), o.eps, rp.strength_n, o.steps);
  } else {
    md += fmt::format("## {} ({} images, clean accuracy {:.2f}%)\n\n", model.name(), o.count,
                      100 * rows[0]["clean_accuracy"].get<double>());
  }
  if (!defended && rp.tuned.at(name).is_null()) {
    md += "**Not tuned**: no tuned settings for this model (models/NAME.tuned.json, written by `sdsgsm tune`), "
          "so the tuned groups are missing and the comparison is not fair.\n\n";
  }
  for (const std::string regime : {"fixed", "early_stop", "minimum_norm"}) {
    std::vector<const nlohmann::json*> sel;
    for (const auto& s : rows) {
      if (s["regime"] == regime) sel.push_back(&s);
    }
    if (sel.empty()) continue;
    md += fmt::format("### {}\n\n{}\n", regime_title(regime), reproduce_table(sel));
  }
  md += ablation_table(rows, m.ids);
  if (defended && !m.eps_curves.empty()) md += eps_table(m.eps_curves, std::min(o.eps_curve_count, o.count));
  if (!m.min_eps_rows.empty()) {
    md += min_eps_table(m.min_eps_rows, std::min(o.eps_curve_count, o.count));
    json["min_eps"] = m.min_eps_rows;
  }
  // Curves of every run on one grid; paired statistics of the reference SD-SGSM against
  // every other attack of its regime (the minimum-norm attacks: on their images).
  std::vector<const AttackRunResult*> runs;
  for (const auto& r : results) runs.push_back(&r);
  const CurveGrid grid = default_grid(runs);
  std::vector<Curve> curves;
  for (size_t i = 0; i < results.size(); ++i) {
    for (auto& c : attack_curves(reproduce_run_name(rows[i]), results[i], grid)) curves.push_back(std::move(c));
  }
  for (const auto& ec : m.eps_curves) {
    for (auto& c : eps_curves(ec)) curves.push_back(std::move(c));
  }
  std::vector<PairedStats> pairs;
  for (const std::string regime : {"fixed", "early_stop", "minimum_norm"}) {
    const std::string ref_regime = regime == "minimum_norm" ? "early_stop" : regime;
    const int64_t ref = reference_row(m.ids, ref_regime);
    if (ref < 0) continue;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i]["regime"] != regime || static_cast<int64_t>(i) == ref) continue;
      const AttackRunResult a = head(results[ref], results[i].size());
      for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
        pairs.push_back(paired_l2(reproduce_run_name(rows[ref]), a, reproduce_run_name(rows[i]), results[i], b));
      }
    }
  }
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
      reproduce_folder_name(name), paired_markdown(shown));
  json["rows"] = rows;
  return md;
}

}  // namespace

std::string reproduce(const ReproduceOptions& o) {
  // Plan: the attacks, the models' tuned settings, the fingerprint a resume must match.
  const ReproducePlan rp = plan_reproduce(o);
  PartialFolder folder(o.out, rp.fingerprint, o.resume, o.restart);
  std::string md = fmt::format(
      "# SD-SGSM reproduction: a fair comparison\n\nCommand: `sdsgsm reproduce --models {} --count {} --offset {} "
      "--eps {} --steps {}` ({}).\n\nEvery attack runs on the same images with the same eps and iterations. "
      "Groups: **textbook** (the literature's settings, alpha 2/255), **tuned** (the baselines' step and decay "
      "tuned by the rule), **SD-SGSM family, tuned** (by the same rule), **shipped defaults** (SD-SGSM's "
      "defaults). The rule, on test images 5000-5999: ASR >= 99.9% float and 8-bit, then the highest SSIM "
      "(`sdsgsm tune`; settings in models/NAME.tuned.json). Figures are over the images each model classifies "
      "correctly; \"8-bit\": the adversarials rounded to 8-bit pixels.\n\n",
      fmt::join(o.models, ","), o.count, o.offset, o.eps, o.steps, version_string());
  nlohmann::json all;
  all["attack_options"] = rp.plan.base.to_json();
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
    const ModelRuns runs = run_model(o, rp, name, defended, *model, ro, folder.work(), transfer_runs);
    if (!dist::is_root()) continue;
    const fs::path model_dir = folder.work() / reproduce_folder_name(name);
    nlohmann::json& json = all["models"][name];
    md += write_model(o, rp, name, defended, *model, runs, model_dir, json);
    // The defended model's robust accuracy, the others' frontier: each runs and writes its own.
    if (defended) {
      md += robust_for(o, *model, ro, rp.strength_n, model_dir / "robust", json["robust"]);
    } else if (o.frontier_count > 0) {
      const auto points = frontier_for(o, rp.plan, *model, ro, rp.tuned.at(name));
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& p : points) pj.push_back(p.to_json());
      write_file_atomic(model_dir / "frontier.json", pj.dump(2) + "\n");
      write_file_atomic(model_dir / "frontier.csv", frontier_csv(points));
      json["frontier"] = pj;
      md += fmt::format(
          "### The saved adversarial: 8-bit l2 against model passes ({} images)\n\nEach attack at several budgets "
          "on the first {} images. Passes per image count every forward pass the attack made (a gradient step is "
          "one forward and one backward pass; DDI's windows, 8-bit checks and the refinement included); figures "
          "over the images each attack fools once its adversarial is rounded to 8-bit pixels. In {}/frontier.csv.\n\n{}\n",
          std::min(o.frontier_count, o.count), std::min(o.frontier_count, o.count), reproduce_folder_name(name),
          frontier_markdown(points));
    }
  }
  if (dist::is_root() && !transfer_runs.empty()) {
    md += transfer_section(o, rp.every, transfer_runs, rp.transfer_n, folder.work(), all["transfer"]);
  }
  if (dist::is_root()) {
    all["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    write_file_atomic(folder.work() / "results.md", md);
    write_file_atomic(folder.work() / "results.json", all.dump(2) + "\n");
    write_folder_report(folder.work());
  }
  folder.commit();
  return dist::is_root() ? md : std::string();
}

}  // namespace sdsgsm
