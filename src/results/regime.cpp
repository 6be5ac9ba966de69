// The regimes (regime.hpp): their keys and words, in one place.
#include "sdsgsm/regime.hpp"

#include <fmt/format.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

const Regime kFixedRegime{"fixed", "fixed", "Fixed iterations", "Fixed iterations (every attack runs all steps)",
                          false};
const Regime kEarlyStopRegime{"early_stop", "early stop", "Early stop",
                              "Early stop (each sample stops at its first success)", true};
const Regime kMinimumNormRegime{"minimum_norm", "minimum norm", "Minimum-norm attacks",
                                "Minimum-norm attacks (unbounded)", false};

std::string Regime::run_name(const std::string& label) const {
  if (*this == kMinimumNormRegime) return label;
  return std::string(name) + ": " + label;
}

std::vector<Regime> budget_regimes() { return {kFixedRegime, kEarlyStopRegime}; }

std::vector<Regime> all_regimes() { return {kFixedRegime, kEarlyStopRegime, kMinimumNormRegime}; }

const Regime& regime_of(const std::string& key) {
  for (const Regime* r : {&kFixedRegime, &kEarlyStopRegime, &kMinimumNormRegime}) {
    if (key == r->key) return *r;
  }
  throw Error(fmt::format("unknown regime '{}' (known: fixed, early_stop, minimum_norm)", key));
}

}  // namespace sdsgsm
