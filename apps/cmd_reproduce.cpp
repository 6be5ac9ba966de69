// `sdsgsm reproduce`: its flags (the comparison itself is sdsgsm::reproduce, reproduce.hpp).
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/reproduce.hpp"

namespace sdsgsm::cli {

void add_reproduce_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "reproduce",
      "The paper's comparison, made fair: for each model, on the first --count test images at --eps and\n"
      "--steps, in two regimes (fixed iterations; early stop): the textbook baselines (FGSM, I-FGSM,\n"
      "MI-FGSM, NI-FGSM, PGD at the literature's alpha 2/255), the baselines and the SD-SGSM family tuned\n"
      "by one rule (models/NAME.tuned.json, written by 'sdsgsm tune'), SD-SGSM on its defaults; and the\n"
      "minimum-norm attacks on the first --min-norm-count images. Then, for each --defended model\n"
      "(adversarially trained), the strength table on the first --strength-count images: the textbook\n"
      "and SD-SGSM-family attacks, APGD-CE and APGD-DLR, ASR against eps, and robust accuracy under the\n"
      "AutoAttack-style ensemble; and the transfer matrices of --transfer between all models.\n"
      "Writes results.md and results.json\n"
      "(tables, ablation, paired statistics), curves.csv/json and paired.csv/json per model, and each\n"
      "run's full outputs to --out.");
  // The list flags as given (comma-separated), their defaults ReproduceOptions' own; the rest
  // straight into ReproduceOptions.
  struct Opts {
    ReproduceOptions r;
    std::string models = joined(r.models), out = r.out.string(), eps_list = joined(r.eps_list);
    std::string min_norm = joined(r.min_norm), tuned = joined(r.tuned);
    std::string defended = joined(r.defended), transfer = joined(r.transfer);
    static std::string joined(const std::vector<std::string>& items) { return fmt::format("{}", fmt::join(items, ",")); }
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--models", o->models, "Comma-separated models")->capture_default_str();
  cmd->add_option("--data", o->r.data, "CIFAR-10 binary folder")->capture_default_str();
  cmd->add_option("--count", o->r.count, "Test images")->capture_default_str();
  cmd->add_option("--offset", o->r.offset, "Index of the first test image")->capture_default_str();
  add_batch_flag(cmd, o->r.batch_size);
  cmd->add_option("--eps", o->r.eps, "l_inf budget")->capture_default_str();
  cmd->add_option("--steps", o->r.steps, "Iterations")->capture_default_str();
  cmd->add_option("--min-norm", o->min_norm, "Minimum-norm attacks (comma-separated; empty: none)")
      ->capture_default_str();
  cmd->add_option("--frontier-count", o->r.frontier_count,
                  "Images of the frontier (median 8-bit l2 against model passes per image, every attack at several "
                  "budgets; the first ones); 0: none")
      ->capture_default_str();
  cmd->add_option("--min-norm-count", o->r.min_norm_count, "Images for the minimum-norm attacks (the first ones)")
      ->capture_default_str();
  cmd->add_option("--min-norm-steps", o->r.min_norm_steps,
                  "Iterations of the minimum-norm attacks (C&W: per binary-search step; DeepFool: at most)")
      ->capture_default_str();
  cmd->add_option("--eps-list", o->eps_list, "eps values of the ASR-against-eps curves (empty: none)")
      ->capture_default_str();
  cmd->add_option("--eps-curve-count", o->r.eps_curve_count, "Images for the eps curves (the first ones)")
      ->capture_default_str();
  cmd->add_option("--tuned", o->tuned,
                  "Tuned-settings files (tuned.json of 'sdsgsm tune'), comma-separated in the order of --models; an "
                  "empty item: the zoo model's own models/NAME.tuned.json");
  cmd->add_option("--defended", o->defended, "Adversarially trained models of the strength table (empty: none)")
      ->capture_default_str();
  cmd->add_option("--strength-count", o->r.strength_count, "Images of the strength table and the ensemble (the first ones)")
      ->capture_default_str();
  cmd->add_option("--robust-queries", o->r.robust_queries,
                  "Square's queries per image in the ensemble (AutoAttack's standard version: 5000)")
      ->capture_default_str();
  cmd->add_option("--transfer", o->transfer,
                  "Attacks of the transfer matrices between all models (of fgsm, ifgsm, mifgsm, nifgsm, pgd, sdsgsm; "
                  "empty: none)")
      ->capture_default_str();
  cmd->add_option("--transfer-count", o->r.transfer_count, "Images of the transfer matrices (the first ones)")
      ->capture_default_str();
  add_sdsgsm_flags(cmd, o->r.sd, kAllSdFlags, "SD-SGSM (the defaults row)");
  cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
  cmd->add_flag("--resume", o->r.resume, "Continue an interrupted run (finished attacks are kept, the one cut off resumes)");
  cmd->add_flag("--restart", o->r.restart, "Discard an interrupted run's partial output and start over");
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      ReproduceOptions r = o->r;
      r.models = split_list(o->models);
      r.min_norm = split_list(o->min_norm);
      r.eps_list = split_list(o->eps_list);
      r.defended = split_list(o->defended);
      r.transfer = split_list(o->transfer);
      r.tuned.clear();
      std::stringstream ss(o->tuned);  // empty items kept: "the zoo model's own"
      for (std::string item; std::getline(ss, item, ',');) r.tuned.push_back(item);
      r.out = o->out;
      r.progress = !common.quiet;
      r.device = parse_device(common.device);
      const std::string md = reproduce(r);
      if (!md.empty()) fmt::print("{}wrote {}\n", md, o->out);
    };
  });
}

}  // namespace sdsgsm::cli
