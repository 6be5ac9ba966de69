// NI-FGSM, the Nesterov Iterative FGSM (Lin et al., "Nesterov Accelerated Gradient and Scale
// Invariance for Adversarial Attacks", ICLR 2020). Distance: l_inf.
//   x_nes = x_t + alpha * mu * g_t
//   g_{t+1} = mu * g_t + grad_x L(x_nes, y) / ||grad_x L(x_nes, y)||_1
//   x_{t+1} = Proj_{B_eps(x), [0,1]}(x_t + alpha * sign(g_{t+1}))
// Options used: eps (8/255), alpha (2/255), steps (10), decay mu (1.0), early_stop, targeted, seed.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

const char kNifgsm[] = "nifgsm";

std::unique_ptr<Attack> make_nifgsm(const AttackOptions& options) {
  AttackHooks hooks;
  hooks.momentum = true;
  hooks.nesterov = true;
  AttackOptions o = options;
  o.decay = o.decay.value_or(1.0);
  o.random_start = false;
  return std::make_unique<EngineAttack>(kNifgsm, o, hooks);
}

}  // namespace sdsgsm
