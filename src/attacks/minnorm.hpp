// The base of the minimum-norm attacks (deepfool, cw, ddn, fmn; private to src/attacks).
//
// MinNormAttack::run does what every such attack shares: targets (the engine's modes), the
// success test, leaving samples that the clean image already fools unchanged, and the per-sample
// bookkeeping of the best (smallest) successful adversarial, which is what each sample returns (a
// sample never fooled returns its clean image). An attack implements `minimize` on a
// MinNormProblem. Losses are summed over the batch and nothing is drawn at random (every attack
// starts from the clean image), so a sample's result does not depend on its batch.
#pragma once

#include <functional>

#include "sdsgsm/attacks.hpp"

namespace sdsgsm::detail {

/// The samples a minimum-norm attack works on and their best adversarial so far. Row i of every
/// tensor is the same sample; `rows` arguments pick a subset (undefined: all rows).
class MinNormProblem {
 public:
  MinNormProblem(Classifier& model, torch::Tensor x, torch::Tensor label, torch::Tensor clean_logits, bool targeted,
                 Norm norm);

  Classifier& model;
  const torch::Tensor x;             ///< the clean images, M x C x H x W
  const torch::Tensor label;         ///< the class to leave (untargeted: the true label) or to reach (the target)
  const torch::Tensor clean_logits;  ///< M x K
  const bool targeted;
  const Norm norm;

  int64_t size() const { return x.size(0); }

  /// Rows `rows` of a per-sample tensor (all of it when rows is undefined).
  static torch::Tensor take(const torch::Tensor& v, const torch::Tensor& rows);

  /// What `differentiate` returns: all detached.
  struct Evaluation {
    torch::Tensor logits;  ///< at the image the variable maps to
    torch::Tensor image;   ///< that image
    torch::Tensor loss;    ///< per sample
    torch::Tensor grad;    ///< d (sum of the loss) / d variable
  };
  /// The loss of an image given its logits and the rows' labels, per sample.
  using Loss = std::function<torch::Tensor(const torch::Tensor& logits, const torch::Tensor& image,
                                           const torch::Tensor& label)>;
  /// Evaluates the model at image = to_image(v) for the samples `rows` (v: their variables) and
  /// differentiates the summed loss with respect to v; counts one iteration for these rows.
  /// to_image undefined: the variable is the image.
  Evaluation differentiate(const torch::Tensor& v, const torch::Tensor& rows, const Loss& loss,
                           const std::function<torch::Tensor(const torch::Tensor&)>& to_image = {});

  /// The goal's logit margin per sample: z_label - max_{j != label} z_j (untargeted) or
  /// max_{j != target} z_j - z_target (targeted); < 0 where the goal is met (but for ties).
  torch::Tensor margin(const torch::Tensor& logits, const torch::Tensor& label) const;
  /// Whether the prediction meets the goal: the test the result is reported with.
  torch::Tensor fooled(const torch::Tensor& logits, const torch::Tensor& label) const;
  /// Per-sample norm (l2 or l_inf) of perturbations.
  torch::Tensor distance(const torch::Tensor& delta) const;
  /// Keeps the images `adv` (of samples `rows`, with their logits) that fool the model (and meet
  /// `also` where given) and are closer to x than the sample's best so far. Returns the fooled mask.
  torch::Tensor record(const torch::Tensor& adv, const torch::Tensor& logits, const torch::Tensor& rows,
                       const torch::Tensor& also = {});
  /// Evaluates the images `adv` of samples `rows` without a gradient and records them.
  torch::Tensor check(const torch::Tensor& adv, const torch::Tensor& rows);
  /// Whether each sample has an adversarial yet.
  torch::Tensor found() const { return best_norm.isfinite(); }
  /// Counts one gradient step for the samples `rows`.
  void count_step(const torch::Tensor& rows);
  /// Counts `forward` forward and `backward` backward passes for the samples `rows`.
  void count_passes(const torch::Tensor& rows, int64_t forward, int64_t backward = 0);

  torch::Tensor best_adv;    ///< the best adversarial so far (x where none)
  torch::Tensor best_norm;   ///< its norm (infinity where none), float32
  torch::Tensor iterations;  ///< int64: gradient steps spent on each sample
  torch::Tensor forward_passes, backward_passes;  ///< int64: model passes of each sample
  int64_t zero_gradient_samples = -1;  ///< of the first gradient computed (-1: none yet)
};

/// A minimum-norm attack: `minimize` searches, the base does the rest (see above).
class MinNormAttack : public Attack {
 public:
  /// `linf`: whether the attack supports --norm inf (else refused with an error).
  MinNormAttack(std::string name, AttackOptions options, MinNormOptions mn, bool linf);

  /// The shared options that apply, "bounded": false, the norm, and the attack's parameters.
  nlohmann::json config() const final;

 protected:
  /// minimize() on the samples the clean image does not already fool; then, with --levels, the
  /// rounding-aware finish (snap_to_grid, refine.hpp) unless the attack's iterates are on the grid.
  void attack(AttackContext& c) const final;
  /// Whether the attack keeps its iterates on the grid of mn().levels itself (DDN).
  virtual bool iterates_on_grid() const { return false; }
  const MinNormOptions& mn() const { return mn_; }
  virtual void minimize(MinNormProblem& p) const = 0;
  /// The attack's own parameters for its config (defaults resolved).
  virtual nlohmann::json parameters() const = 0;

 private:
  MinNormOptions mn_;
};

/// a_final + (a0 - a_final) (1 + cos(pi k / K)) / 2: the cosine annealing of DDN's and FMN's step
/// sizes, from a0 at k = 0 to a_final at k = K.
double cosine_schedule(double a0, double a_final, int64_t k, int64_t steps);

}  // namespace sdsgsm::detail
