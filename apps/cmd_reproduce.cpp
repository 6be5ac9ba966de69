// `sdsgsm reproduce`: its flags (the comparison itself is sdsgsm::reproduce, reproduce.hpp).
#include <fmt/format.h>

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
  // The flags from ReproduceOptions' declarations (defaults: its own), SD-SGSM's from their sets.
  struct Opts {
    ReproduceOptions r;
    OptionFlags flags;
  };
  auto o = std::make_shared<Opts>();
  o->flags.bind(ReproduceOptions::option_set(), o->r, "");
  bind_sdsgsm_flags(o->flags, o->r.sd, kAllSdFlags, "SD-SGSM (the defaults row)");
  o->flags.add_to(cmd);
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      ReproduceOptions r = o->r;
      r.progress = !common.quiet;
      r.device = parse_device(common.device);
      const std::string md = reproduce(r);
      if (!md.empty()) fmt::print("{}wrote {}\n", md, r.out.string());
    };
  });
}

}  // namespace sdsgsm::cli
