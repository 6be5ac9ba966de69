// The post-steps any attack can take after its own body (private to src/attacks): the 8-bit
// refinement (AttackOptions::refine) and the rounding-aware finish of the minimum-norm attacks.
#pragma once

#include "sdsgsm/attacks.hpp"

namespace sdsgsm::detail {

/// The logit margin an adversarial must clear (attack_success_logits) to be taken by the
/// refinement or the finish: far above the float32 noise of a forward pass in another batch, so
/// that the run's own check of the saved image agrees.
inline constexpr double kGridMargin = 1e-3;

/// round(x * (levels - 1)) / (levels - 1) of x clamped to [0,1]: the grid of `levels` values per
/// channel (256: the 8-bit pixels a saved image has).
torch::Tensor quantize_levels(const torch::Tensor& x, int64_t levels);

/// The rounding-aware finish: for the samples `rows` (their adversarial c.r.adversarial fools as
/// floats), the first scale t of 1, 1 + 1/64, 1 + 1/32, ..., 1 + 1/2, 2, 3, 4, 6, 8 (at most
/// `max_passes` of them) for which x + t (adversarial - x), rounded to the grid of `levels`, fools the model with
/// a margin of kGridMargin; that grid point becomes the sample's adversarial. Samples that no
/// tried scale fools keep their adversarial. One forward pass per scale tried, counted. `bound`
/// >= 0 clips the perturbation to that l_inf budget. Returns, over `rows`, whether the sample's
/// adversarial is now on the grid and fooling.
torch::Tensor snap_to_grid(AttackContext& c, const torch::Tensor& rows, int64_t levels, int64_t max_passes,
                           double bound);

/// The 8-bit refinement (AttackOptions::refine, refine_step, refine_gamma), at most o.refine
/// forward passes per sample. Pass 1: which adversarials fool once rounded to 8 bits (margin
/// kGridMargin); those are refined on the 8-bit grid by quantised DDN steps from the rounded
/// adversarial, each one forward and one backward pass: the perturbation moves along the
/// normalised gradient of the cross-entropy by refine_step x its current norm eps
/// (cosine-annealed to 1/100 of that), is rescaled to eps (eps shrinks by refine_gamma after an
/// adversarial iterate, grows by it after another) and rounded to the grid; the last iterate is
/// checked with one more pass. Every candidate is checked on the exact grid image; a sample's
/// adversarial is replaced only by a checked one with a smaller l2, so no sample ever loses its
/// 8-bit success. `bound` >= 0 keeps the perturbation in that l_inf budget.
void refine_8bit(AttackContext& c, const AttackOptions& o, double bound);

}  // namespace sdsgsm::detail
