// The HTML report's internals, shared by its three files: report_runs.cpp (finding run folders,
// reading them, grouping them), html_examples.cpp (small HTML helpers, the example images and the
// per-class figures) and html_report.cpp (the other sections and the page).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/curves.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/robust_curve_report.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm::report_detail {

/// One run folder, read back.
struct Run {
  fs::path dir;
  std::string label;
  std::string regime;  ///< a reproduce run's regime (fixed, early_stop, minimum_norm); "" otherwise
  nlohmann::json metrics, timing;  ///< timing: null when the folder has no timing.json
  AttackRunResult r;
  bool adversarial = false;  ///< the folder holds adversarial shards
};

/// Runs on the same model and images: compared with each other.
struct Group {
  nlohmann::json info;  ///< model, data, split, offset, count
  std::vector<Run> runs;
  std::vector<std::string> notes;
};

/// The most lines a chart holds (a reader tells about 8 colours apart): a group with more runs
/// shows its featured ones (featured_runs).
inline constexpr size_t kMaxLines = 8;

// report_runs.cpp
/// A file's JSON, or null when it is missing or not JSON.
nlohmann::json json_or_null(const fs::path& f);
/// Reads a run folder (Error when it is not one, or a file is corrupt).
Run load_run(const fs::path& dir);
/// The key of a run's group: its model, data, split, offset and count.
std::string group_key(const nlohmann::json& metrics);
/// A group's heading: regime, model, images.
std::string group_title(const nlohmann::json& info);
/// Eps curves of the group's runs, from curves.json files beside them.
std::vector<Curve> eps_curves_of(const Group& g);
/// The run a group's others are compared with: the SD-SGSM run that paired.json beside the runs
/// compares with the others (reproduce's reference), else the group's first SD-SGSM run, else its
/// first run.
size_t reference_of(const Group& g);
/// The runs a group's charts show, in group order: the reference and the first others, at most
/// `limit` (kMaxLines for a chart; kMaxExampleRuns for the example images and per-class figures).
inline constexpr size_t kMaxExampleRuns = 4;
std::vector<size_t> featured_runs(const Group& g, size_t limit = kMaxLines);
/// The paired statistics of the group's reference against each other run, both bases: from
/// paired.json beside its runs when it covers them, computed otherwise; `source` says which.
std::vector<PairedStats> paired_of(const Group& g, const ReportOptions& o, std::string& source);

// html_findings.cpp
/// The findings of a reproduce folder `dir` (one holding results.json), first on its page: the
/// claims table, the frontier charts, the strength table of each defended model with its ASR
/// against eps, and the transfer matrices as heat maps; "" for other folders.
std::string findings_section(const fs::path& dir);

// html_examples.cpp
/// An <img> of a 3 x H x W (or 1 x H x W) image in [0,1], inline as a PNG data URI.
std::string img(const torch::Tensor& image, const std::string& alt);
std::string pct(double v);               ///< "12.34%", "–" when not finite
std::string num(double v, int decimals);  ///< fixed decimals, "–" when not finite
/// j[path_a][key] or j[key] as a number; NaN when absent.
double number_at(const nlohmann::json& j, const std::string& path_a, const std::string& key);
double number_at(const nlohmann::json& j, const std::string& key);
std::vector<double> doubles(const torch::Tensor& t);

/// The example images of a group: clean images, their labels and the model, each when available.
struct Examples {
  std::vector<int64_t> rows;  ///< rows of the runs' per-sample tables
  torch::Tensor clean;        ///< k x C x H x W, undefined when the data set cannot be read
  std::vector<std::string> classes;
  std::shared_ptr<Classifier> model;
};
/// The class names a run recorded in its info (record_data_flags: absent for CIFAR-10).
std::vector<std::string> info_classes(const nlohmann::json& info);
/// The names for a group's classes when the run recorded none: CIFAR-10's when its labels and
/// predictions fit in ten classes, else none ("class k").
std::vector<std::string> default_classes(const Group& g);
/// The first o.examples correctly classified images of a group, read from its data and model
/// (each missing one adds a note to the group).
Examples prepare_examples(Group& g, const ReportOptions& o);
std::string examples_section(Group& g, const Examples& e);
/// Per class: with up to kMaxClassesInTable classes an ASR table and a confusion heat map per
/// attack; with more, the classes with the highest ASR and the most frequent (true -> predicted)
/// moves.
inline constexpr int64_t kMaxClassesInTable = 20;
std::string per_class_section(const Group& g, const Examples& e);

}  // namespace sdsgsm::report_detail
