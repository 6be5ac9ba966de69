// The SD-SGSM tuning sweep (include/sdsgsm/sweep.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sdsgsm/options.hpp"
#include "sdsgsm/sweep.hpp"

namespace sdsgsm {

namespace {

// The sweep's choices, declared: a check's message names the flag and lists the choices.
const OptionSet<SweepOptions>& sweep_option_set() {
  using O = SweepOptions;
  static const OptionSet<O> set(
      "sweep", {
                   option("variant", &O::variant, "The attack to tune").one_of(sweep_variants()),
                   option("asr-basis", &O::asr_basis, "Which ASR must reach the bound").one_of({"float", "8bit", "both"}),
               });
  return set;
}

}  // namespace

std::vector<SdsgsmOptions> SweepGrid::expand(const SdsgsmOptions& base) const {
  auto need = [](bool ok, const char* flag) {
    if (!ok) throw Error(fmt::format("{} needs at least one value", flag));
  };
  need(!window.empty(), "--window");
  need(!rho.empty(), "--rho");
  need(!lambda.empty(), "--lambda");
  need(!map.empty(), "--map");
  need(!beta.empty(), "--beta");
  need(!step_factor.empty(), "--step-factor");
  std::vector<SdsgsmOptions> out;
  for (int64_t k : window) {
    std::vector<int64_t> strides;
    for (int64_t s : stride.empty() ? std::vector<int64_t>{-1} : stride) {
      int64_t v = s > 0 ? s : std::max<int64_t>(1, k / -s);
      if (v <= k && std::find(strides.begin(), strides.end(), v) == strides.end()) strides.push_back(v);
    }
    for (int64_t s : strides) {
      for (const auto& m : map) {
        // A soft map has no domain: rho does not enter it, so it is tried once (with the first rho).
        const std::vector<double> rhos = m == "soft" ? std::vector<double>{rho.front()} : rho;
        for (double r : rhos) {
          for (double l : lambda) {
            for (double b : beta) {
              for (double f : step_factor) {
                SdsgsmOptions o = base;
                o.ddi.window = k;
                o.ddi.stride = s;
                o.set_map(m).set_rho(r).set_lambda(l).set_beta(b).set_step_factor(f);
                o.validate(-1, -1);
                out.push_back(o);
              }
            }
          }
        }
      }
    }
  }
  if (out.empty()) throw Error("the sweep grid is empty: every --stride is larger than every --window");
  return out;
}

nlohmann::json SweepGrid::to_json() const {
  return {{"window", window}, {"stride", stride}, {"rho", rho},   {"lambda", lambda},
          {"map", map},       {"beta", beta},     {"step_factor", step_factor}, {"decay", decay}};
}

nlohmann::json SweepRow::to_json() const {
  nlohmann::json j = sd.to_json();
  if (!is_sdsgsm_family(variant)) j = {{"step_factor", sd.step_factor}};
  j["variant"] = variant;
  j["alpha"] = alpha;
  j["early_stop"] = early_stop;
  if (early_stop_8bit) j["early_stop_8bit"] = true;
  j["decay"] = decay;
  j["windows"] = windows;
  j["ddi_seconds"] = ddi_seconds;
  j["iteration_seconds"] = iteration_seconds;
  j["meets_asr"] = meets_asr;
  j["ddi_within_iterations"] = ddi_within_iterations;
  j["summary"] = summary;
  return j;
}

SweepRow SweepRow::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("variant")) throw Error("a tuned row needs an object with a 'variant'");
  SweepRow r;
  try {
    r.variant = j.at("variant").get<std::string>();
    r.alpha = j.at("alpha").get<double>();
    r.decay = j.at("decay").get<double>();
    r.early_stop = j.at("early_stop").get<bool>();
    r.early_stop_8bit = j.value("early_stop_8bit", false);
    r.windows = j.value("windows", int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("a tuned row of '{}' is malformed ({})", j.value("variant", std::string("?")), e.what()));
  }
  const auto variants = sweep_variants();
  if (std::find(variants.begin(), variants.end(), r.variant) == variants.end()) {
    throw Error(fmt::format("a tuned row names an unknown attack '{}'", r.variant));
  }
  r.sd = is_sdsgsm_family(r.variant) ? SdsgsmOptions::from_json(j) : SdsgsmOptions().set_step_factor(j.value("step_factor", 1.0));
  return r;
}

bool meets_asr(const nlohmann::json& summary, double min_asr, const std::string& basis) {
  const bool f = summary["float"]["asr"].get<double>() >= min_asr;
  const bool q = summary["rounded_8bit"]["asr"].get<double>() >= min_asr;
  if (basis == "float") return f;
  if (basis == "8bit") return q;
  if (basis == "both") return f && q;
  SweepOptions o;
  o.asr_basis = basis;
  throw Error(sweep_option_set().find("asr-basis")->check(o));
}

std::vector<std::string> sweep_variants() {
  // The SD-SGSM family, then the iterative textbook baselines (FGSM's one step has nothing to sweep).
  std::vector<std::string> v = attack_names(kSdFamily);
  for (const auto& name : attack_names(kTextbook)) {
    if (attack_info(name).default_steps > 1) v.push_back(name);
  }
  return v;
}

bool is_sdsgsm_family(const std::string& variant) { return attack_info(variant).has(kSdFamily); }

std::unique_ptr<Attack> SweepRow::make(const AttackOptions& base, std::shared_ptr<SensitivityCache> cache) const {
  AttackOptions ao = base;
  ao.set_decay(decay).set_early_stop(early_stop).set_early_stop_8bit(early_stop_8bit);
  if (is_sdsgsm_family(variant)) {
    ao.alpha.reset();  // from the step factor, recorded as such in the attack's configuration
    return make_sdsgsm_variant(variant, ao, sd, attack_info(variant).has(kDdiMap) ? std::move(cache) : nullptr);
  }
  return make_attack(variant, ao.set_alpha(ao.eps / static_cast<double>(ao.steps) * sd.step_factor));
}

std::string SweepRow::describe() const {
  if (!is_sdsgsm_family(variant)) {
    return fmt::format("{}: alpha {:.3g}/255 (step factor {}), decay {}, {}", variant, alpha * 255, sd.step_factor,
                       decay, early_stop ? (early_stop_8bit ? "early stop (8-bit)" : "early stop") : "all steps");
  }
  if (windows == 0) {  // sgsm: no DDI, a uniform map
    return fmt::format("uniform map (no DDI), beta {}, step factor {}, decay {}", sd.beta, sd.step_factor, decay);
  }
  return fmt::format("k {} s {} ({} windows), {} map, rho {}, lambda {}, beta {}, step factor {}, decay {}", sd.ddi.window,
                     sd.ddi.stride, windows, sd.map, sd.rho, sd.lambda, sd.beta, sd.step_factor, decay);
}

std::vector<SweepRow> run_sweep(Classifier& model, const Dataset& data, const SweepGrid& grid,
                                const SweepOptions& options,
                                const std::function<void(const SweepRow&, size_t, size_t)>& on_row) {
  sweep_option_set().validate(options);
  if (grid.decay.empty()) throw Error("--decay needs at least one value");
  const bool family = is_sdsgsm_family(options.variant);
  std::vector<SdsgsmOptions> configs;
  if (family) {
    configs = grid.expand(options.base);
  } else {  // a baseline: only the step (and the decay, with momentum) vary
    if (grid.step_factor.empty()) throw Error("--step-factor needs at least one value");
    for (double f : grid.step_factor) {
      configs.push_back(SdsgsmOptions(options.base).set_step_factor(f));
      configs.back().validate(-1, -1);
    }
  }
  const bool momentum = attack_info(options.variant).has(kMomentum);
  const std::vector<double> decays = momentum ? grid.decay : std::vector<double>{0.0};
  const size_t total = configs.size() * decays.size();
  const int64_t h = data.images.size(2), w = data.images.size(3);
  const bool allocates = attack_info(options.variant).has(kDdiMap);
  const bool early_stop = options.attack.early_stop.value_or(family);
  // One cache per window grid: its DDI runs once, on the first configuration that uses it.
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<SensitivityCache>> caches;
  std::vector<SweepRow> rows;
  for (const auto& sd : configs) {
    std::shared_ptr<SensitivityCache> cache;
    int64_t windows = 0;
    if (allocates) {
      sd.validate(h, w);
      cache = caches[{sd.ddi.window, sd.ddi.stride}];
      if (!cache) cache = caches[{sd.ddi.window, sd.ddi.stride}] = std::make_shared<SensitivityCache>(sd.ddi);
      windows = ddi_windows(h, w, sd.ddi).size(0);
    }
    for (double decay : decays) {
      SweepRow row;
      row.variant = options.variant;
      row.sd = sd;
      row.decay = decay;
      row.early_stop = early_stop;
      row.early_stop_8bit = options.attack.early_stop_8bit;
      row.alpha = options.attack.eps / static_cast<double>(options.attack.steps) * sd.step_factor;
      row.windows = windows;
      AttackOptions ao = options.attack;
      ao.set_decay(decay).set_early_stop(early_stop);
      std::unique_ptr<Attack> attack;
      if (family) {
        ao.alpha.reset();  // from the step factor
        attack = make_sdsgsm_variant(options.variant, ao, sd, cache);
      } else {
        attack = make_attack(options.variant, ao.set_alpha(row.alpha));
      }
      RunOptions ro = options.run;
      ro.keep_adversarial = false;
      AttackRunResult r = run_attack(model, data, *attack, ro);
      row.summary = r.summary();
      row.ddi_seconds = cache ? cache->seconds() : 0.0;
      row.iteration_seconds = r.attack_seconds - r.allocation_seconds;
      row.meets_asr = meets_asr(row.summary, options.min_asr, options.asr_basis);
      row.ddi_within_iterations = row.ddi_seconds <= row.iteration_seconds;
      rows.push_back(row);
      if (on_row) on_row(rows.back(), rows.size(), total);
    }
  }
  return rows;
}

namespace {

// A row that fools no image has no SSIM or l2 (NaN): it ranks below every row that has them.
double ssim_of(const SweepRow& r) {
  const double v = r.summary["float"]["ssim_mean"].get<double>();
  return std::isnan(v) ? -1.0 : v;
}
double l2_of(const SweepRow& r) {
  const double v = r.summary["float"]["l2_mean"].get<double>();
  return std::isnan(v) ? std::numeric_limits<double>::infinity() : v;
}

}  // namespace

std::vector<size_t> rule_order(const std::vector<SweepRow>& rows) {
  std::vector<size_t> idx(rows.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const auto &ra = rows[a], &rb = rows[b];
    if (ra.meets_asr != rb.meets_asr) return ra.meets_asr;
    if (ssim_of(ra) != ssim_of(rb)) return ssim_of(ra) > ssim_of(rb);
    return l2_of(ra) < l2_of(rb);
  });
  return idx;
}

int64_t choose_row(const std::vector<SweepRow>& rows, bool within_cost) {
  for (size_t i : rule_order(rows)) {
    if (!rows[i].meets_asr) return -1;
    if (!within_cost || rows[i].ddi_within_iterations) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace sdsgsm
