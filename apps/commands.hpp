// Sub-commands of the sdsgsm tool. Each registers its options on the CLI11 app and runs after
// parsing; errors are thrown as sdsgsm::Error and reported by main as one line.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "sdsgsm/data.hpp"

namespace sdsgsm::cli {

/// Options every sub-command shares.
struct Common {
  int threads = 0;  ///< 0: all cores (divided among the ranks on this machine under mpirun)
  bool quiet = false;
  std::string device = "cpu";
};

using Runner = std::function<void()>;

/// --model, --data and --split, named and explained the same way by every command that reads
/// images with a model.
void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split);

/// The --split value as a Split.
Split to_split(const std::string& split);

/// The items of a comma-separated list (empty items skipped).
std::vector<std::string> split_list(const std::string& text);

void add_data_command(CLI::App& app, Common& common, Runner& run);
void add_train_command(CLI::App& app, Common& common, Runner& run);
void add_eval_command(CLI::App& app, Common& common, Runner& run);
void add_attack_command(CLI::App& app, Common& common, Runner& run);
void add_saliency_command(CLI::App& app, Common& common, Runner& run);
void add_reproduce_command(CLI::App& app, Common& common, Runner& run);
void add_sweep_command(CLI::App& app, Common& common, Runner& run);
void add_export_command(CLI::App& app, Common& common, Runner& run);
void add_tune_command(CLI::App& app, Common& common, Runner& run);
void add_report_command(CLI::App& app, Common& common, Runner& run);


}  // namespace sdsgsm::cli
