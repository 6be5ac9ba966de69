// Robust accuracy, AutoAttack's way (Croce & Hein, ICML 2020): the per-image worst case over a
// sequence of attacks, each run only on the images still robust after the ones before it. The
// sequence is one of AutoAttack's versions (--ensemble) or a custom one (--attacks):
//   standard  APGD-CE, APGD-T (9 target classes), FAB-T (9 target classes), Square (5000 queries,
//             AutoAttack's window schedule), in every norm; l1 as AutoAttack's l1 standard version:
//             APGD-CE with 5 restarts, APGD-T with 5 targets, each restart through the radii
//             3 eps, 2 eps, eps (AttackOptions::shrinking_radius)
//   plus      APGD-CE and APGD-DLR with 5 restarts, Square, APGD-T, FAB-T (AutoAttack's plus order;
//             its untargeted FAB with 5 restarts has no counterpart here and is left out)
//   rand      APGD-CE and APGD-DLR, each step's gradient averaged over 20 passes (EOT), for
//             randomised models
// Before the sequence, two passes of the first batch that differ mark the model randomised: the
// default (standard, not asked for) switches to rand with a warning; a version asked for refuses.
// DLR needs a third logit: on a 2-class model APGD-DLR and APGD-T are left out (on two classes
// both pursue what APGD-CE pursues: the other class), with a note.
//
// The checks (Carlini et al., "On evaluating adversarial robustness", 2019; AutoAttack's own),
// each a warning in the result:
//   gradient-free  Square fooled more than 0.2 points of the images (AutoAttack's threshold) that
//                  the gradient attacks before it left robust;
//   more-steps     the first attack leaves more images robust at --steps than at a fifth of them
//                  (on the first --check-count images);
//   large-eps      the first attack leaves images robust at a budget where any image can be changed
//                  beyond recognition (l_inf 0.5; l2 0.5 sqrt(C H W)), on the first --check-count images;
//   randomness     two passes of the first batch differ (l2-normalised logits by more than 1e-5);
//   probabilities  the outputs are probabilities (every row in [0,1] summing to 1 within 1e-4): a
//                  softmax inside the model flattens the cross-entropy's gradient;
//   targets        the model has fewer than 10 classes: APGD-T and FAB-T take classes - 1 targets.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/robust_result.hpp"

namespace sdsgsm {

/// One attack of the sequence and what the version sets for it.
struct RobustStagePlan {
  std::string attack;
  int64_t restarts = 1;     ///< APGD and FAB-T: restarts (per target)
  int64_t eot_samples = 1;  ///< APGD: passes averaged per step
  int64_t targets = 9;      ///< APGD-T and FAB-T: target classes
  bool shrinking_radius = false;  ///< APGD in l1: restarts through 3 eps, 2 eps, eps (AutoAttack's l1)
};

/// Options of `sdsgsm robust`, one to one with its flags.
struct RobustOptions {
  SDSGSM_OPTION(double, eps, 8.0 / 255)
  SDSGSM_OPTION(Norm, norm, Norm::Linf)
  /// AutoAttack's version: standard, plus, rand or custom (the sequence `attacks`).
  SDSGSM_OPTION(std::string, ensemble, "standard")
  /// The user asked for `ensemble` (or gave `attacks`): a randomised model then stops the run
  /// instead of switching it to rand.
  SDSGSM_OPTION(bool, ensemble_given, false)
  /// The custom sequence, in order; with it the version is custom.
  std::vector<std::string> attacks;
  SDSGSM_OPTION(int64_t, steps, 100)     ///< APGD and FAB-T iterations (other gradient attacks: theirs)
  SDSGSM_OPTION(int64_t, restarts, 1)    ///< APGD and FAB-T restarts (per target)
  SDSGSM_OPTION(int64_t, queries, 5000)  ///< Square's queries per image
  /// Square's window schedule (AttackOptions::square_schedule): AutoAttack's standard version's.
  SDSGSM_OPTION(std::string, square_schedule, "autoattack")
  /// APGD's passes averaged per step; 0: the version's (rand: 20, else 1).
  SDSGSM_OPTION(int64_t, eot_samples, 0)
  SDSGSM_OPTION(uint64_t, seed, 0)
  SDSGSM_OPTION(int64_t, check_count, 100)  ///< images of the more-steps and large-eps checks (0: none)
  SDSGSM_OPTION(int64_t, batch_size, 128)
  SDSGSM_OPTION(int64_t, first_index, 0)  ///< data-set index of the source's first image (sample ids)
  SDSGSM_OPTION(bool, progress, true)
  torch::Device device = torch::kCPU;

  /// The version run: custom when `attacks` is given, else `ensemble`.
  std::string version() const;
  /// The sequence of the version for the norm, with each attack's restarts and EOT passes.
  std::vector<RobustStagePlan> plan() const;
  /// The attacks of plan(), in order.
  std::vector<std::string> sequence() const;
  /// Throws Error naming the flag of the first invalid value (unknown or unbounded attacks included).
  void validate() const;
  /// What the result depends on (a resume must match it).
  nlohmann::json to_json() const;
  /// The options of one attack of the sequence at budget `eps` (an attack outside the plan: the
  /// --restarts and --eot-samples given).
  AttackOptions attack_options(const RobustStagePlan& stage, double eps) const;
  AttackOptions attack_options(const std::string& name, double eps) const;
  /// The attack of one stage at budget `eps`: its options and its EOT passes (sdsgsm/eot.hpp).
  std::unique_ptr<Attack> make_stage_attack(const RobustStagePlan& stage, double eps) const;
  /// The same by name (outside the plan: make_attack with attack_options).
  std::unique_ptr<Attack> make_stage_attack(const std::string& name, double eps) const;
};

/// Robust accuracy of `model` on `source` under the sequence. A randomised model (two passes of
/// the first batch differ) switches the default standard version to rand, or throws Error with
/// advice when the version was asked for (`ensemble_given`). With `work` (a run's partial
/// folder), each batch's result is written to work/batches/ and the checks to work/checks.json
/// as they finish, and those already there (a resumed run) are read back instead of recomputed.
/// The files of the result: sdsgsm/robust_report.hpp.
RobustResult robust_accuracy(Classifier& model, const ImageSource& source, const RobustOptions& options,
                             const fs::path& work = {});

}  // namespace sdsgsm
