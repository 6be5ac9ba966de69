// Robust accuracy as a curve over eps, in one run (`sdsgsm robust --eps 2/255,4/255,8/255`).
//
// The radii run in increasing order and each runs the whole sequence (robust.hpp) only on the
// images still robust at the radius before it: an image fooled within a smaller ball is fooled
// within every larger one (the larger ball contains the smaller), so it needs no more attacks.
// Running from the largest radius down would not be valid: an image fooled at 16/255 may well be
// robust at 8/255.
//
// What the curve gives per image: fooled at radius k exactly when a separate run at some radius
// j <= k fools it (each attack's randomness is seeded per image, so an image's outcome does not
// depend on which other images share its batch). The curve therefore equals separate runs at every
// radius when the separate runs are monotone per image, and is otherwise lower: an attack is not
// monotone in eps (its step sizes and random starts scale with eps), so a separate run at 8/255
// can miss an image its own run at 4/255 fools; the curve counts that image fooled at 8/255.
#pragma once

#include <string>
#include <vector>

#include "sdsgsm/robust.hpp"

namespace sdsgsm {

/// One radius of the curve.
struct RobustCurvePoint {
  double eps = 0;
  int64_t robust = 0;               ///< images robust at this radius (and every smaller one)
  std::vector<RobustStage> stages;  ///< per attack at this radius: images attacked (those still robust), fooled
  double seconds = 0;               ///< time of the attacks at this radius
};

/// What the curve found. `result` is the largest radius's, in the form of a single run's:
/// per image the attack that fooled it at the smallest radius it fell, the stages' counts summed
/// over the radii, and the masking checks run at the largest radius.
struct RobustCurve {
  std::vector<RobustCurvePoint> points;  ///< increasing eps
  RobustResult result;
  /// Per image, the index of the first radius that fooled it (-1: misclassified clean;
  /// points.size(): robust at every radius).
  torch::Tensor fooled_at;

  double robust_accuracy(size_t k) const {
    return result.images ? static_cast<double>(points.at(k).robust) / static_cast<double>(result.images) : 0;
  }
};

/// Parses --eps: one number or a comma-separated list of them (fractions allowed: 8/255), strictly
/// increasing. Throws Error with one line naming `flag` on an empty item, a non-number, a value
/// that is not increasing (an unsorted list or a duplicate is refused, not reordered).
std::vector<double> parse_eps_list(const std::string& text, const std::string& flag = "--eps");

/// The curve of `model` on `source` at the radii `eps` (increasing; options.eps is ignored). With
/// `work` (a run's partial folder), each batch's outcome is written to work/curve/ and read back on
/// a resumed run, as robust_accuracy does.
RobustCurve robust_curve(Classifier& model, const ImageSource& source, const RobustOptions& options,
                         const std::vector<double>& eps, const fs::path& work = {});

}  // namespace sdsgsm
