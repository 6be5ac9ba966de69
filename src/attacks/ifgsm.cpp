// I-FGSM / BIM, the Basic Iterative Method (Kurakin, Goodfellow & Bengio, "Adversarial Examples
// in the Physical World", ICLR workshop 2017). Distance: l_inf.
//   x_0 = x;  x_{t+1} = Proj_{B_eps(x), [0,1]}(x_t + alpha * sign(grad_x L(x_t, y)))
// Options used: eps (8/255), alpha (2/255), steps (10), early_stop (off), targeted, seed.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

const char kIfgsm[] = "ifgsm";

std::unique_ptr<Attack> make_ifgsm(const AttackOptions& options) {
  AttackOptions o = options;
  o.decay = o.decay.value_or(0.0);
  o.random_start = false;
  return std::make_unique<EngineAttack>(kIfgsm, o, AttackHooks{});
}

}  // namespace sdsgsm
