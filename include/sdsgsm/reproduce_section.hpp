// The writing of `sdsgsm reproduce` (src/report/reproduce_section.cpp): results.md's introduction,
// each model's section (its tables, minimal eps, paired differences) with its curves and paired
// files, and the prose around the robust accuracy, the frontier and the transfer matrices. It
// formats finished runs; the plan and the runs are the orchestration's (reproduce_plan.hpp,
// reproduce.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/core.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

/// What one model's entries produced.
struct ReproduceModelRuns {
  std::vector<nlohmann::json> rows;  ///< each run's report, with label, group, regime and config
  std::vector<std::string> ids;      ///< rows[i]'s entry id (REGIME/KIND/KEY)
  std::vector<AttackRunResult> results;
  std::vector<EpsCurve> eps_curves;
  std::vector<nlohmann::json> min_eps_rows;  ///< min_eps_summary() objects with "label" and "regime"
};

/// What a model's section says of the run.
struct ReproduceModelInfo {
  std::string name;          ///< as given (--models, --defended): its folder
  std::string display_name;  ///< the model's own name
  bool defended = false;
  bool tuned = true;         ///< it had tuned settings
  int64_t images = 0;        ///< the comparison's (or the strength table's) images
  std::string eps;           ///< as given
  int64_t steps = 0;
  int64_t eps_curve_images = 0;
};

/// The first n samples of a run (all when n <= 0 or n >= its size).
AttackRunResult first_samples(const AttackRunResult& r, int64_t n);

/// results.md's title and introduction: the command and the groups.
std::string reproduce_intro(const std::vector<std::string>& models, int64_t count, int64_t offset,
                            const std::string& eps, int64_t steps);

/// One model's section of results.md; writes its curves.csv/json and paired.csv/json to
/// `model_dir` and sets its rows and minimal eps in `json`.
std::string write_reproduce_model(const ReproduceModelInfo& info, const ReproduceModelRuns& m,
                                  const fs::path& model_dir, nlohmann::json& json);

/// The title of a defended model's robust-accuracy table.
std::string reproduce_robust_title(const std::vector<std::string>& stages, int64_t queries);
/// The robust accuracy over the curve's radii (`curve_table`, titled by reproduce_robust_title; the
/// last radius is `eps`), then `summary` (RobustResult::summary: the figure at eps and the checks).
std::string reproduce_robust_curve_section(const std::string& curve_table, const std::string& summary,
                                           const std::string& model, int64_t images, const std::string& eps,
                                           int64_t apgd_steps, int64_t queries);
/// The robust accuracy at one radius: its paragraph around its table (`table`, titled by
/// reproduce_robust_title).
std::string reproduce_robust_section(const std::string& table, const std::string& model, int64_t images,
                                     const std::string& eps, int64_t apgd_steps, int64_t queries);
/// The frontier's paragraph around its table, on `images` images.
std::string reproduce_frontier_section(const std::string& model, int64_t images, const std::string& table);
/// The transfer section around its matrices, on `images` images.
std::string reproduce_transfer_section(int64_t images, const std::string& eps, const std::string& tables);

}  // namespace sdsgsm
