// What `sdsgsm robust` found (computed by robust_accuracy, sdsgsm/robust.hpp; written by
// sdsgsm/robust_report.hpp): per attack of the sequence its counts, the masking checks, and per
// image the attack that fooled it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace sdsgsm {

/// What one attack of the sequence did.
struct RobustStage {
  std::string attack, label;
  int64_t attacked = 0;  ///< images it ran on (those still robust)
  int64_t fooled = 0;    ///< of those, images it fooled
  int64_t forward_passes = 0, backward_passes = 0;
  double seconds = 0;
};

/// A masking check: whether it warned, and what it measured.
struct RobustCheck {
  std::string name;
  bool warned = false;
  bool ran = false;  ///< false: not applicable (no images, no such attack)
  std::string detail;
};

struct RobustResult {
  int64_t images = 0, clean_correct = 0, robust = 0;
  std::string ensemble;  ///< the version that ran (standard, plus, rand or custom)
  int64_t classes = 0;   ///< the model's output classes
  std::vector<RobustStage> stages;
  std::vector<RobustCheck> checks;
  std::vector<std::string> notes;  ///< what the evaluation could not do (e.g. no gradient-free l2 attack)
  // Per image, N rows: data-set index, label, clean prediction, and the stage that fooled it
  // (-1: misclassified clean; stages.size(): robust).
  torch::Tensor index, label, clean_pred, fooled_by;

  double clean_accuracy() const { return images ? static_cast<double>(clean_correct) / images : 0; }
  double robust_accuracy() const { return images ? static_cast<double>(robust) / images : 0; }
  std::vector<std::string> warnings() const;
  /// Every figure and the checks; deterministic (no times).
  nlohmann::json to_json() const;
  /// index,label,clean_pred,fooled_by (attack name, "clean" or "robust") per image.
  std::string csv() const;
  /// The table printed and written to robust.md: the counts per attack, then summary().
  std::string table(const std::string& title) const;
  /// The robust accuracy's line, then a line per check and per note.
  std::string summary() const;
};

}  // namespace sdsgsm
