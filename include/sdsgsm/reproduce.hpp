// `sdsgsm reproduce`: the paper's comparison made fair. For each model, on the evaluation images,
// three groups of attacks in two regimes, the minimum-norm attacks, curves and paired statistics:
//   fixed iterations  every attack runs all steps: the textbook baselines (the literature's alpha
//                     2/255), the baselines tuned by the rule, the SD-SGSM family tuned by the
//                     same rule (coarse and fine DDI grid), SD-SGSM on its shipped defaults;
//   early stop        the same groups, each sample stopping at its first success;
//   minimum norm      DeepFool, C&W, DDN, FMN (l2 and l_inf), unbounded, on the first images.
// Then the strength table, for each defended (adversarially trained) model, on the first
// strength_count images: the textbook attacks and the SD-SGSM family on their defaults (fixed
// iterations), APGD-CE and APGD-DLR (100 steps), their ASR-against-eps curves, and robust accuracy
// under the AutoAttack-style ensemble (sdsgsm/robust.hpp; Square with robust_queries queries). And
// the transfer matrices: each attack of `transfer`, made on every model, evaluated on every model.
// The tuned settings come from models/NAME.tuned.json (`sdsgsm tune`, on test images 5000-5999).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/core.hpp"
#include "sdsgsm/options.hpp"
#include "sdsgsm/reproduce_tables.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

/// What `sdsgsm reproduce` runs, one to one with its flags.
/// --min-norm's default: deepfool, cw, ddn, fmn-l2, fmn-linf (FMN in both its norms).
std::vector<std::string> default_min_norm_attacks();

struct ReproduceOptions {
  std::vector<std::string> models = {"resnet20", "vgg7bn"};
  std::string data = "data/cifar10";
  fs::path out = "runs/reproduce";
  int64_t count = 1000, offset = 0, batch_size = 128;
  std::string eps = "8/255";  ///< as given (results.md quotes the command)
  int64_t steps = 10;
  SdsgsmOptions sd;  ///< the shipped-defaults row
  std::vector<std::string> min_norm = default_min_norm_attacks();
  int64_t min_norm_count = 100, min_norm_steps = 100;
  std::vector<std::string> eps_list = {"1/255", "2/255", "4/255", "8/255", "16/255"};
  int64_t eps_curve_count = 100;
  /// Images of the saved-adversarial frontier (sdsgsm/frontier.hpp; the first ones); 0: none.
  int64_t frontier_count = 100;
  /// Adversarially trained models of the strength table (zoo names or files); empty: none.
  std::vector<std::string> defended = {"resnet20-at"};
  int64_t strength_count = 200;  ///< images of the strength table and the ensemble (the first ones)
  int64_t robust_queries = 1000;  ///< Square's queries per image in the ensemble (AutoAttack's standard: 5000)
  /// Radii of the ensemble's robust-accuracy curve (sdsgsm/robust_curve.hpp), strictly increasing,
  /// the last one `eps`; empty: eps/2 and eps.
  std::vector<std::string> robust_eps;
  /// Attacks whose fixed-iteration runs (textbook settings; sdsgsm: its defaults) are evaluated on
  /// every other model (of models and defended), on the first transfer_count images; empty: none.
  std::vector<std::string> transfer = attack_names(kTransfer);
  int64_t transfer_count = 200;
  /// tuned.json files in the order of `models`; a missing or empty item: the zoo model's own
  /// models/NAME.tuned.json.
  std::vector<std::string> tuned;
  bool resume = false, restart = false, progress = true;
  torch::Device device = torch::kCPU;

  /// The declarations of the fields above that are flags of `sdsgsm reproduce` (options.hpp):
  /// word, help, check; the command binds them (sd's flags are SD-SGSM's own sets).
  static const OptionSet<ReproduceOptions>& option_set();
  /// Throws Error naming the flag of the first bad value.
  void validate() const;
};

/// Runs the comparison into `o.out` (all or nothing, resumable) and returns results.md's text
/// (on rank 0; other ranks take part in the runs and get "").
std::string reproduce(const ReproduceOptions& o);

}  // namespace sdsgsm
