// Sub-commands of the sdsgsm tool. Each registers its options on the CLI11 app and runs after
// parsing; errors are thrown as sdsgsm::Error and reported by main as one line.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
struct RobustOptions;
class PartialFolder;
}  // namespace sdsgsm

namespace sdsgsm::cli {

/// Options every sub-command shares.
struct Common {
  int threads = 0;  ///< 0: all cores (divided among the ranks on this machine under mpirun)
  bool quiet = false;
  std::string device = "cpu";
};

using Runner = std::function<void()>;

/// --classes, --resize and --crop: how a folder's or a CSV list's images are labelled and sized.
struct DataFlags {
  std::string classes;  ///< a class names file (read_class_names)
  int64_t resize = 0, crop = 0;
};

/// --model, --data and --split, named and explained the same way by every command that reads
/// images with a model; with `flags`, --classes, --resize and --crop too.
void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split);
void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split, DataFlags& flags);

/// How to read the data for `model`: the class names of --classes, else the model's own (the zoo's
/// 10-class networks: CIFAR-10's), and the sizes.
DataOptions data_options(const DataFlags& flags, Classifier& model, const torch::Device& device);

/// Records the data flags and the data's class names (when they are not CIFAR-10's) in a run's info,
/// so that reports name the classes and --config repeats the run; adds nothing for CIFAR-10 runs.
void record_data_flags(nlohmann::json& info, const DataFlags& flags, const std::vector<std::string>& classes);

/// The --split value as a Split.
Split to_split(const std::string& split);

/// `robust` at several radii (--eps A,B,C): runs the curve into `folder`, writes its files, commits.
void run_robust_curve(Classifier& model, const ImageSource& data, const RobustOptions& r, const std::vector<double>& radii,
                      const nlohmann::json& info, PartialFolder& folder, const std::string& eps_text);

/// The items of a comma-separated list (empty items skipped).
std::vector<std::string> split_list(const std::string& text);

/// --count N (>= 1) with `count`'s value as its default: given, exactly N images (an error when
/// the data holds fewer); not given, up_to(default) (data.hpp): a smaller source is taken whole.
void add_count_flag(CLI::App* cmd, int64_t& count, const std::string& help);

/// --batch-size, with the same name and check (RunOptions::validate) wherever a command batches.
void add_batch_flag(CLI::App* cmd, int64_t& batch, const std::string& help = "Images per batch");

/// The flags of option sets (include/sdsgsm/options.hpp), from their declarations: a command binds
/// the sets it takes to the structs the flags fill, then adds the flags. A word several bound
/// sets declare is one flag that sets each set's field (help: theirs joined), and --SET.word sets
/// one set's only. Values are parsed when the command line is (a bad number is a parse error);
/// they are checked by the structs' validate().
class OptionFlags {
 public:
  template <class O>
  OptionFlags& bind(const OptionSet<O>& set, O& target, const std::string& group, unsigned parts = ~0u) {
    for (const auto& f : set.fields()) {
      if (!f.user || (parts != ~0u && (f.part & parts) == 0)) continue;
      Sink s;
      s.set = set.name();
      s.kind = f.kind;
      s.optional = f.optional;
      s.off = f.off_flag;
      s.help = f.help;
      s.group = group;
      if (f.default_text) {
        s.default_text = *f.default_text;
      } else if (!f.optional && f.kind != OptionKind::Switch) {
        nlohmann::json v = f.get(target);
        s.default_text = v.is_string() ? v.get<std::string>() : v.dump();
      }
      s.apply = [field = f, &target](const std::string& text) { field.parse(target, text); };
      add(f.word, std::move(s));
    }
    return *this;
  }
  /// Adds the flags to `cmd`, in the order of the declarations.
  void add_to(CLI::App* cmd) const;

 private:
  struct Sink {
    std::string set, help, group, default_text;
    OptionKind kind = OptionKind::Number;
    bool optional = false;
    bool off = false;  ///< only the --no- form (a switch on by default)
    std::function<void(const std::string&)> apply;
  };
  void add(const std::string& word, Sink s);
  std::vector<std::pair<std::string, std::vector<Sink>>> words_;
};

/// Which of SD-SGSM's flags a command takes (SdsgsmOptions::Part).
enum SdFlags : unsigned {
  kDdiFlags = SdsgsmOptions::kDdiPart,        ///< --window --stride --fill --score --ddi-batch (the sensitivity map)
  kDomainFlags = SdsgsmOptions::kDomainPart,  ///< --rho (the domain)
  kMapFlags = SdsgsmOptions::kMapPart,        ///< --lambda --map --gamma (the allocation map)
  kStepFlags = SdsgsmOptions::kStepPart,      ///< --beta --step-factor --rescale-step --recompute-every (the step)
  kAllSdFlags = 15,
};

/// Binds SD-SGSM's option sets (DdiOptions', SdsgsmOptions') to `sd` for the parts `which`, in the
/// help's `group` ("": the command's own options); the defaults shown are sd's values.
void bind_sdsgsm_flags(OptionFlags& flags, SdsgsmOptions& sd, unsigned which, const std::string& group);

/// The help group of an attack option set's flags (set: its name): "" for the options every
/// attack takes, else the family's attacks, from the registry.
std::string attack_option_group(const std::string& set);

/// Binds every attack option set (visit_attack_option_sets) to the struct it fills in `s` (an
/// AttackSettings, or any struct with the members attack, sd and mn), each in its help group.
template <class S>
void bind_attack_settings(OptionFlags& flags, S& s) {
  visit_attack_option_sets([&](const auto& set, auto pick) { flags.bind(set, pick(s), attack_option_group(set.name())); });
}

/// bind_sdsgsm_flags, added to `cmd` alone.
void add_sdsgsm_flags(CLI::App* cmd, SdsgsmOptions& sd, unsigned which, const std::string& group);

/// `sdsgsm attack --config FILE` (FILE: a run's metrics.json): the run's options as arguments of
/// `cmd`, so that `args` (the command line after the command's name, without --config FILE)
/// repeats the run. A key becomes a flag where `cmd` has one of that name ("batch_size" ->
/// --batch-size, "ddi": {"window"} -> --window, booleans as the flag or its --no- form); a flag
/// given in `args` wins over the file's value. Throws Error naming the file when it is not a
/// run's metrics.json.
std::vector<std::string> config_arguments(const CLI::App& cmd, const std::string& file,
                                          const std::vector<std::string>& args);

/// Expands `--config FILE` after the command named `command` in argv (argv[0] first), in place.
void expand_config(const CLI::App& app, const std::string& command, std::vector<std::string>& argv);

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
void add_robust_command(CLI::App& app, Common& common, Runner& run);
void add_transfer_command(CLI::App& app, Common& common, Runner& run);


}  // namespace sdsgsm::cli
