// PGD, Projected Gradient Descent in l_inf (Madry et al., "Towards Deep Learning Models Resistant
// to Adversarial Attacks", ICLR 2018): I-FGSM from a uniform random start in the eps ball.
//   x_0 = clip_[0,1](x + U(-eps, eps));  x_{t+1} = Proj_{B_eps(x), [0,1]}(x_t + alpha * sign(grad))
// The start is drawn per sample from a generator seeded by (seed, sample id), so a sample's
// result does not depend on its batch.
// Options used: eps (8/255), alpha (2/255), steps (10), seed (0), early_stop, targeted.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

const char kPgd[] = "pgd";

std::unique_ptr<Attack> make_pgd(const AttackOptions& options) {
  AttackOptions o = options;
  o.decay = o.decay.value_or(0.0);
  o.random_start = true;
  return std::make_unique<EngineAttack>(kPgd, o, AttackHooks{});
}

}  // namespace sdsgsm
