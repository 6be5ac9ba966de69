// FGSM, the Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
// Adversarial Examples", ICLR 2015). Distance: l_inf.
//   x' = clip_[0,1](x + eps * sign(grad_x L(x, y)))
// Options used: eps (default 8/255), targeted/target_label, seed (random targets). One step:
// alpha, steps, decay and early stop (also on 8-bit) do not apply, so that one set of options
// serves every attack of a comparison.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

const char kFgsm[] = "fgsm";

std::unique_ptr<Attack> make_fgsm(const AttackOptions& options) {
  options.validate();  // as given: a bad --alpha or --steps is an error even though FGSM sets its own
  AttackOptions o = options;
  // One step of the whole budget. (alpha must be > 0: with eps 0 the projection undoes any step.)
  o.steps = 1;
  o.alpha = o.eps > 0 ? o.eps : kDefaultAlpha;
  o.decay = o.decay.value_or(0.0);
  o.early_stop = false;
  o.early_stop_8bit = false;
  o.random_start = false;
  return std::make_unique<EngineAttack>(kFgsm, o, AttackHooks{});
}

}  // namespace sdsgsm
