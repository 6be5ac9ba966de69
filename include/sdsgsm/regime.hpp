// The regimes an attack runs in, each with its key (results.json, tuned.json, run ids) and the
// words tables and run names use. One mapping: every table, run name and plan reads it here.
#pragma once

#include <string>
#include <vector>

namespace sdsgsm {

struct Regime {
  const char* key;      ///< "fixed", "early_stop", "minimum_norm"
  const char* name;     ///< in a run's name and a table cell: "fixed", "early stop", "minimum norm"
  const char* title;    ///< a table's title: "Fixed iterations", "Early stop", "Minimum-norm attacks"
  const char* heading;  ///< reproduce's section heading: the title and what it means
  bool early_stop;      ///< the attacks stop each sample at its first success

  /// A run's name in curves, pairs and the report: "fixed: I-FGSM (tuned)", "early stop: ...";
  /// the minimum-norm attacks by their label alone.
  std::string run_name(const std::string& label) const;
  bool operator==(const Regime& o) const { return std::string(key) == o.key; }
  bool operator!=(const Regime& o) const { return !(*this == o); }
};

extern const Regime kFixedRegime, kEarlyStopRegime, kMinimumNormRegime;

/// The regimes of the comparison with a budget, in table order: fixed, then early stop.
std::vector<Regime> budget_regimes();
/// Every regime, in table order.
std::vector<Regime> all_regimes();
/// The regime of a key; throws Error naming the known keys.
const Regime& regime_of(const std::string& key);

}  // namespace sdsgsm
