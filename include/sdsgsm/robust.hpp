// Robust accuracy, AutoAttack's way (Croce & Hein, ICML 2020): the per-image worst case over a
// sequence of attacks, each run only on the images still robust after the ones before it. The
// default sequence is AutoAttack's standard one: APGD-CE, APGD-T (9 target classes), FAB-T (9 target
// classes), then Square (5000 queries, AutoAttack's window schedule), gradient-free, so that a model
// which hides its gradients does not look robust (l2: APGD-CE, APGD-T, FAB-T; Square is l_inf).
//
// The checks for gradient masking (Carlini et al., "On evaluating adversarial robustness", 2019;
// AutoAttack's own checks), each a warning in the result:
//   gradient-free  Square fooled images the gradient attacks left robust;
//   more-steps     the first attack leaves more images robust at --steps than at a fifth of them
//                  (on the first --check-count images);
//   large-eps      the first attack leaves images robust at a budget where any image can be changed
//                  beyond recognition (l_inf 0.5; l2 0.5 sqrt(C H W)), on the first --check-count images.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/robust_result.hpp"

namespace sdsgsm {

/// Options of `sdsgsm robust`, one to one with its flags.
struct RobustOptions {
  SDSGSM_OPTION(double, eps, 8.0 / 255)
  SDSGSM_OPTION(Norm, norm, Norm::Linf)
  /// The sequence, in order; empty: apgd-ce, apgd-t, fab-t, square (l2: the first three; Square is l_inf).
  std::vector<std::string> attacks;
  SDSGSM_OPTION(int64_t, steps, 100)     ///< APGD and FAB-T iterations (other gradient attacks: theirs)
  SDSGSM_OPTION(int64_t, restarts, 1)    ///< APGD and FAB-T restarts (per target)
  SDSGSM_OPTION(int64_t, queries, 5000)  ///< Square's queries per image
  /// Square's window schedule (AttackOptions::square_schedule): AutoAttack's standard version's.
  SDSGSM_OPTION(std::string, square_schedule, "autoattack")
  SDSGSM_OPTION(uint64_t, seed, 0)
  SDSGSM_OPTION(int64_t, check_count, 100)  ///< images of the more-steps and large-eps checks (0: none)
  SDSGSM_OPTION(int64_t, batch_size, 128)
  SDSGSM_OPTION(int64_t, first_index, 0)  ///< data-set index of the source's first image (sample ids)
  SDSGSM_OPTION(bool, progress, true)
  torch::Device device = torch::kCPU;

  /// The sequence run: `attacks`, or the default for the norm.
  std::vector<std::string> sequence() const;
  /// Throws Error naming the flag of the first invalid value (unknown or unbounded attacks included).
  void validate() const;
  /// What the result depends on (a resume must match it).
  nlohmann::json to_json() const;
  /// The options of one attack of the sequence at budget `eps`.
  AttackOptions attack_options(const std::string& name, double eps) const;
};

/// Robust accuracy of `model` on `source` under the sequence. With `work` (a run's partial
/// folder), each batch's result is written to work/batches/ and the checks to work/checks.json
/// as they finish, and those already there (a resumed run) are read back instead of recomputed.
/// The files of the result: sdsgsm/robust_report.hpp.
RobustResult robust_accuracy(Classifier& model, const ImageSource& source, const RobustOptions& options,
                             const fs::path& work = {});

}  // namespace sdsgsm
