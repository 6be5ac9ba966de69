// `sdsgsm compare`: several attacks on the same images into one all-or-nothing folder: each
// attack's run in a sub-folder, the comparison table (compare.md, compare.json), the curves and
// paired statistics, optionally each attack's ASR against eps and minimal eps, and report.html.
// The command (apps/cmd_attack.cpp) builds the attacks from its flags and calls run_compare.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/runner.hpp"

namespace sdsgsm {

/// One attack of a comparison.
struct CompareAttack {
  std::unique_ptr<Attack> attack;
  /// The attack at another budget for its ASR-against-eps curve and its minimal eps; null: it has
  /// no budget (the minimum-norm attacks), and neither is run.
  AttackAtEps curve_at;
  AttackAtEps min_eps_at;
};

struct CompareJob {
  std::vector<CompareAttack> attacks;
  Classifier* model = nullptr;
  ImageSource* data = nullptr;
  /// The same images as a Dataset (the eps curves and the minimal eps); called only when needed.
  std::function<Dataset()> dataset;
  RunOptions run;
  nlohmann::json info;         ///< the run info (run_info.hpp): into every run's metrics.json and compare.json
  nlohmann::json fingerprint;  ///< what a resume must match (each attack's config is added)
  AttackOptions shared;        ///< the options the attacks share (compare.json, the table's heading)
  std::string steps;           ///< the heading's steps: a number, or "each attack's own"
  std::vector<double> epsilons;  ///< the eps curves' budgets; empty: none
  bool min_eps = false;
  int min_eps_rounds = 6;
  uint64_t seed = 0;  ///< the bootstrap's
  fs::path out;
  bool resume = false, restart = false;
  bool adversarial = true;  ///< each run writes its adversarial shards
  int64_t sheet = 8;
};

/// Runs the comparison into `job.out` and returns the text it prints (rank 0; "" on the others).
std::string run_compare(const CompareJob& job);

}  // namespace sdsgsm
