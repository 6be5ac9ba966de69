// Tuning every attack of a comparison by one rule (include/sdsgsm/tuning.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sdsgsm/models.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/tuning.hpp"

namespace sdsgsm {
namespace {

SweepGrid baseline_grid(std::vector<double> decay) {
  SweepGrid g;
  // alpha = eps / steps x f: 0.2/255 ... 2/255 at eps 8/255 and 10 steps (2/255 is the literature's).
  g.step_factor = {0.25, 0.5, 0.75, 1.0, 1.5, 2.5};
  g.decay = std::move(decay);
  return g;
}

SweepGrid family_grid(int64_t window, int64_t stride, std::vector<double> beta, std::vector<double> rho,
                      std::vector<double> lambda) {
  SweepGrid g;
  g.window = {window};
  g.stride = {stride};
  g.beta = std::move(beta);
  g.rho = std::move(rho);
  g.lambda = std::move(lambda);
  g.step_factor = {0.5, 1.0, 1.5, 2.5};
  g.decay = {0.0};
  return g;
}

}  // namespace

std::vector<TuningItem> tuning_plan() {
  std::vector<TuningItem> plan;
  // The iterative textbook baselines: the step, and the decay of those with momentum.
  for (const auto& name : attack_names(kTextbook)) {
    const AttackInfo& a = attack_info(name);
    if (a.default_steps > 1) {
      plan.push_back({a.name, a.label, a.name, baseline_grid(a.has(kMomentum) ? std::vector<double>{0.5, 1.0}
                                                                                 : std::vector<double>{0.0})});
    }
  }
  // The SD-SGSM family as an ablation, from the uniform map up to the whole method on two DDI grids:
  // beta where the step is smoothed, rho where a DDI map allocates.
  plan.push_back({kSgsm, "SGSM only (uniform map)", kSgsm, family_grid(16, 16, {0.5, 1.0}, {0.05}, {0.8})});
  plan.push_back({kSdIfgsm, "SD only (k 16, sign)", kSdIfgsm, family_grid(16, 16, {1.0}, {0.05, 0.25}, {0.8})});
  plan.push_back({kSdsgsm, "SD-SGSM (k 16 s 16)", kSdsgsm, family_grid(16, 16, {0.5, 1.0}, {0.05, 0.25}, {0.8})});
  plan.push_back({std::string(kSdsgsm) + "-fine", "SD-SGSM (k 4 s 2)", kSdsgsm,
                  family_grid(4, 2, {0.5}, {0.05, 0.25}, {0.5, 0.8})});
  return plan;
}

std::vector<std::string> tuning_regimes() {
  std::vector<std::string> keys;
  for (const Regime& r : budget_regimes()) keys.push_back(r.key);
  return keys;
}

nlohmann::json run_tuning(Classifier& model, const Dataset& data, const TuningOptions& options,
                          const std::function<void(const std::string&, const TuningItem&, const SweepRow&, size_t,
                                                   size_t)>& on_row) {
  const auto plan = tuning_plan();
  for (const auto& k : options.only) {
    bool known = false;
    for (const auto& item : plan) known = known || item.key == k;
    if (!known) throw Error(fmt::format("--only: no attack '{}' in the tuning plan", k));
  }
  for (const auto& r : options.regimes) {
    const auto known = tuning_regimes();
    if (std::find(known.begin(), known.end(), r) == known.end()) {
      throw Error(fmt::format("--regimes: '{}' is not {}", r, fmt::join(known, " or ")));
    }
  }
  nlohmann::json out;
  for (const auto& item : plan) {
    out["plan"].push_back({{"key", item.key}, {"label", item.label}, {"variant", item.variant},
                           {"grid", item.grid.to_json()}});
  }
  for (const auto& regime : options.regimes) {
    for (const auto& item : plan) {
      if (!options.only.empty() &&
          std::find(options.only.begin(), options.only.end(), item.key) == options.only.end()) {
        continue;
      }
      SweepOptions so;
      so.variant = item.variant;
      so.attack = options.attack;
      so.attack.alpha.reset();
      so.attack.decay.reset();
      const bool es = regime_of(regime).early_stop;
      so.attack.set_early_stop(es).set_early_stop_8bit(es);
      so.run = options.run;
      so.min_asr = options.min_asr;
      so.asr_basis = options.asr_basis;
      auto rows = run_sweep(model, data, item.grid, so, [&](const SweepRow& r, size_t i, size_t n) {
        if (on_row) on_row(regime, item, r, i, n);
      });
      const int64_t c = choose_row(rows, false);
      nlohmann::json chosen = c < 0 ? nlohmann::json() : rows[c].to_json();
      if (c >= 0) chosen["label"] = item.label;
      out["regimes"][regime][item.key] = chosen;
      for (const auto& r : rows) out["rows"][regime][item.key].push_back(r.to_json());
    }
  }
  return out;
}

std::unique_ptr<Attack> make_tuned_attack(const nlohmann::json& row, const AttackOptions& base) {
  return SweepRow::from_json(row).make(base);
}

fs::path find_tuned_settings(const std::string& model) {
  if (fs::exists(model)) return {};  // a file, not a zoo name
  try {
    fs::path weights = find_zoo_weights(model);
    fs::path tuned = weights.parent_path() / (weights.stem().string() + ".tuned.json");
    return fs::exists(tuned) ? tuned : fs::path();
  } catch (const Error&) {
    return {};
  }
}

}  // namespace sdsgsm
