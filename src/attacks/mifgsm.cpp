// MI-FGSM, the Momentum Iterative FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum",
// CVPR 2018). Distance: l_inf.
//   g_{t+1} = mu * g_t + grad_x L(x_t, y) / ||grad_x L(x_t, y)||_1
//   x_{t+1} = Proj_{B_eps(x), [0,1]}(x_t + alpha * sign(g_{t+1}))
// The l1 normalisation is computed as a per-sample mean of |grad| (the l1 norm over C*H*W, a
// constant factor that changes no sign). With mu = 0 this is exactly I-FGSM.
// Options used: eps (8/255), alpha (2/255), steps (10), decay mu (1.0), early_stop, targeted, seed.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

const char kMifgsm[] = "mifgsm";

std::unique_ptr<Attack> make_mifgsm(const AttackOptions& options) {
  AttackHooks hooks;
  hooks.momentum = true;
  AttackOptions o = options;
  o.decay = o.decay.value_or(1.0);
  o.random_start = false;
  return std::make_unique<EngineAttack>(kMifgsm, o, hooks);
}

}  // namespace sdsgsm
