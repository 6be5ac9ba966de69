// The plan of `sdsgsm reproduce` (reproduce_plan.hpp): the options checked, the entries per model,
// the tuned settings, the fingerprint. No attack runs here.
#include "sdsgsm/reproduce_plan.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sdsgsm/models.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/sweep.hpp"
#include "sdsgsm/tuning.hpp"

namespace sdsgsm {
namespace {

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

/// The DDI maps shared by the runs of one model on the same DDI grid.
std::shared_ptr<SensitivityCache> cache_for(SensitivityCaches& caches, const SdsgsmOptions& sd) {
  auto& c = caches[sd.ddi.to_json().dump()];
  if (!c) c = std::make_shared<SensitivityCache>(sd.ddi);
  return c;
}

std::string defaults_label(const std::string& variant) { return attack_info(variant).label + " (defaults)"; }

std::string entry_id(const Regime& regime, const std::string& kind, const std::string& key) {
  return std::string(regime.key) + "/" + kind + "/" + key;
}

/// An attack of the registry at a budget, on `ao` otherwise.
AttackAtEps registry_attack(const std::string& name, const AttackOptions& ao) {
  return [name, ao](double eps) { return make_attack(name, AttackOptions(ao).set_eps(eps)); };
}

/// A variant of the SD-SGSM family at a budget; `c`: its DDI maps (null for SGSM's uniform map).
AttackAtEps family_attack(const std::string& variant, const AttackOptions& ao, const SdsgsmOptions& sd,
                          std::shared_ptr<SensitivityCache> c) {
  return [variant, ao, sd, c](double eps) {
    return make_sdsgsm_variant(variant, AttackOptions(ao).set_eps(eps), sd, c);
  };
}

AttackPlan attack_plan(const ReproduceOptions& o) {
  AttackPlan plan;
  plan.base.set_eps(parse_number(o.eps, "--eps")).set_steps(o.steps);
  plan.base.validate();
  plan.sd = o.sd;
  plan.min_norm = o.min_norm;
  plan.min_norm_count = o.min_norm_count;
  plan.min_norm_steps = o.min_norm_steps;
  return plan;
}

}  // namespace

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

std::vector<std::string> default_min_norm_attacks() {
  return {kDeepfool, kCw, kDdn, std::string(kFmn) + "-l2", std::string(kFmn) + "-linf"};
}

const OptionSet<ReproduceOptions>& ReproduceOptions::option_set() {
  using O = ReproduceOptions;
  static const OptionSet<O> set(
      "reproduce",
      {
          list_option("models", &O::models, "Comma-separated models"),
          option("data", &O::data, "CIFAR-10 binary folder"),
          option("count", &O::count, "Test images"),
          option("offset", &O::offset, "Index of the first test image").at_least(0),
          option("batch-size", &O::batch_size, "Images per batch").at_least(1),
          option("eps", &O::eps, "l_inf budget"),
          option("steps", &O::steps, "Iterations"),
          list_option("min-norm", &O::min_norm, "Minimum-norm attacks (comma-separated; empty: none)"),
          option("frontier-count", &O::frontier_count,
                 "Images of the frontier (median 8-bit l2 against model passes per image, every attack at several "
                 "budgets; the first ones); 0: none")
              .at_least(0),
          option("min-norm-count", &O::min_norm_count, "Images for the minimum-norm attacks (the first ones)").at_least(1),
          option("min-norm-steps", &O::min_norm_steps,
                 "Iterations of the minimum-norm attacks (C&W: per binary-search step; DeepFool: at most)")
              .at_least(1),
          list_option("eps-list", &O::eps_list, "eps values of the ASR-against-eps curves (empty: none)"),
          option("eps-curve-count", &O::eps_curve_count, "Images for the eps curves (the first ones)").at_least(1),
          list_option("tuned", &O::tuned,
                      "Tuned-settings files (tuned.json of 'sdsgsm tune'), comma-separated in the order of --models; "
                      "an empty item: the zoo model's own models/NAME.tuned.json",
                      EmptyItems::Keep),
          list_option("defended", &O::defended, "Adversarially trained models of the strength table (empty: none)"),
          option("strength-count", &O::strength_count,
                 "Images of the strength table and the ensemble (the first ones)")
              .at_least(1),
          option("robust-queries", &O::robust_queries,
                 "Square's queries per image in the ensemble (AutoAttack's standard version: 5000)")
              .at_least(1),
          list_option("robust-eps", &O::robust_eps,
                      "Radii of the ensemble's robust-accuracy curve, strictly increasing, the last one --eps "
                      "(empty: eps/2 and eps; one item: --eps alone)"),
          list_option("transfer", &O::transfer,
                      fmt::format("Attacks of the transfer matrices between all models (of {}; empty: none)",
                                  fmt::join(attack_names(kTransfer), ", "))),
          option("transfer-count", &O::transfer_count, "Images of the transfer matrices (the first ones)").at_least(1),
          option("out", &O::out, "Output folder"),
          option("resume", &O::resume,
                 "Continue an interrupted run (finished attacks are kept, the one cut off resumes)"),
          option("restart", &O::restart, "Discard an interrupted run's partial output and start over"),
      });
  return set;
}

std::vector<double> robust_radii(const ReproduceOptions& o) {
  const double eps = parse_number(o.eps, "--eps");
  if (o.robust_eps.empty()) return {eps / 2, eps};
  std::vector<double> radii;
  for (const auto& e : o.robust_eps) {
    const double v = parse_number(e, "--robust-eps");
    if (!radii.empty() && !(v > radii.back())) {
      throw Error(fmt::format("--robust-eps: the radii must be strictly increasing ('{}' follows {:.6g})", e, radii.back()));
    }
    radii.push_back(v);
  }
  if (std::abs(radii.back() - eps) > 1e-12) {
    throw Error(fmt::format("--robust-eps: the last radius must be --eps ({}), not '{}'", o.eps, o.robust_eps.back()));
  }
  return radii;
}

void ReproduceOptions::validate() const {
  if (models.empty()) throw Error("--models names no model");
  option_set().validate(*this);
  AttackOptions().set_eps(parse_number(eps, "--eps")).set_steps(steps).validate();
  sd.validate(-1, -1);
  for (const auto& spec : min_norm) make_min_norm(spec, AttackOptions());  // unknown names fail here
  for (const auto& e : eps_list) parse_number(e, "--eps-list");
  robust_radii(*this);
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

std::vector<ReproduceEntry> strength_entries(const AttackPlan& p, int64_t count, SensitivityCaches& caches) {
  std::vector<ReproduceEntry> out;
  const AttackOptions fixed = AttackOptions(p.base).set_early_stop(false);  // SD-SGSM's defaults stop early
  const Regime& regime = kFixedRegime;
  for (const auto& name : attack_names(kTextbook)) {
    out.push_back(ReproduceEntry().set_regime(regime).set_group("textbook").set_label(attack_info(name).label)
                      .set_make(registry_attack(name, fixed)).set_count(count).set_eps_curve(true).set_attack(name)
                      .set_id(entry_id(regime, "textbook", name)));
  }
  for (const auto& variant : attack_names(kSdFamily)) {
    auto c = attack_info(variant).has(kDdiMap) ? cache_for(caches, p.sd) : nullptr;  // SGSM's map is uniform
    out.push_back(ReproduceEntry().set_regime(regime).set_group("shipped defaults").set_label(defaults_label(variant))
                      .set_make(family_attack(variant, fixed, p.sd, c)).set_count(count).set_eps_curve(true)
                      .set_attack(variant).set_id(entry_id(regime, "defaults", variant)));
  }
  const auto adaptive = attack_names(kStrength);
  for (const auto& name : adaptive) {
    // APGD on its own defaults (100 steps, its step-size schedule): only the budget is shared.
    const AttackOptions ao = AttackOptions().set_seed(p.base.seed).set_steps(attack_info(name).default_steps);
    out.push_back(ReproduceEntry().set_regime(regime).set_group("APGD").set_label(attack_info(name).label)
                      .set_make(registry_attack(name, ao)).set_count(count)
                      .set_eps_curve(name == adaptive.front())  // the eps curve of the first (APGD-CE)
                      .set_attack(name).set_id(entry_id(regime, "adaptive", name)));
  }
  return out;
}

std::vector<ReproduceEntry> comparison_entries(const AttackPlan& p, const nlohmann::json& tuned,
                                               SensitivityCaches& caches) {
  std::vector<ReproduceEntry> out;
  for (const Regime& regime : budget_regimes()) {
    const bool es = regime.early_stop;
    const AttackOptions ao = AttackOptions(p.base).set_early_stop(es);
    for (const auto& name : attack_names(kTextbook)) {
      if (es && attack_info(name).default_steps == 1) continue;  // FGSM's one step: early stop changes nothing
      out.push_back(ReproduceEntry().set_regime(regime).set_group("textbook").set_label(attack_info(name).label)
                        .set_make(registry_attack(name, ao)).set_eps_curve(es).set_attack(name)
                        .set_id(entry_id(regime, "textbook", name)));
    }
    out.push_back(ReproduceEntry().set_regime(regime).set_group("shipped defaults").set_label(defaults_label(kSdsgsm))
                      .set_make(family_attack(kSdsgsm, ao, p.sd, cache_for(caches, p.sd))).set_eps_curve(es)
                      .set_attack(kSdsgsm).set_id(entry_id(regime, "defaults", kSdsgsm)));
    if (tuned.is_null()) continue;
    for (const auto& item : tuning_plan()) {
      // A regime or an attack the file lacks (e.g. 'tune --regimes fixed') is left out.
      const nlohmann::json rows = tuned["regimes"].value(regime.key, nlohmann::json::object());
      const nlohmann::json row = rows.is_object() ? rows.value(item.key, nlohmann::json()) : nlohmann::json();
      if (row.is_null()) continue;  // none met the rule: reported by tuning.md
      const bool family = is_sdsgsm_family(item.variant);
      const SweepRow r = SweepRow::from_json(row);
      auto c = attack_info(item.variant).has(kDdiMap) ? cache_for(caches, r.sd) : nullptr;
      out.push_back(ReproduceEntry().set_regime(regime).set_group(family ? "SD-SGSM family, tuned" : "tuned")
                        .set_label(family ? item.label : item.label + " (tuned)")
                        .set_make([r, base = p.base, c](double eps) { return r.make(AttackOptions(base).set_eps(eps), c); })
                        .set_eps_curve(es).set_attack(item.variant).set_id(entry_id(regime, "tuned", item.key)));
    }
  }
  for (const auto& spec : p.min_norm) {
    const AttackOptions base = AttackOptions(p.base).set_steps(p.min_norm_steps);
    out.push_back(ReproduceEntry().set_regime(kMinimumNormRegime).set_group("minimum norm").set_label(spec)
                      .set_make([spec, base](double) { return make_min_norm(spec, base); })
                      .set_count(p.min_norm_count).set_attack(spec).set_id(std::string(kMinimumNormRegime.key) + "/" + spec));
  }
  return out;
}

ReproducePlan plan_reproduce(const ReproduceOptions& o) {
  o.validate();
  ReproducePlan rp;
  rp.attacks = attack_plan(o);
  for (const auto& e : o.eps_list) rp.eps_list.push_back(parse_number(e, "--eps-list"));
  rp.robust_eps = robust_radii(o);
  const std::vector<std::string>& models = o.models;
  // Everything the tables depend on: a resume must match it.
  nlohmann::json fp = {{"models", models},
                       {"data", o.data},
                       {"offset", o.offset},
                       {"count", o.count},
                       {"batch_size", o.batch_size},
                       {"attack_options", rp.attacks.base.to_json()},
                       {"sdsgsm_options", o.sd.to_json()},
                       {"min_norm", rp.attacks.min_norm},
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
    fp["robust_eps"] = rp.robust_eps;
    for (const auto& m : o.defended) fp["model_md5"][m] = model_checksum(m);
  }
  if (!o.transfer.empty()) {
    fp["transfer"] = o.transfer;
    fp["transfer_count"] = o.transfer_count;
  }
  for (size_t i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    fp["model_md5"][m] = model_checksum(m);
    const fs::path t = i < o.tuned.size() && !o.tuned[i].empty() ? fs::path(o.tuned[i]) : find_tuned_settings(m);
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

}  // namespace sdsgsm
