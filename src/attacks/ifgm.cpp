// I-FGM, the house's worked example of adding an attack (docs/ARCHITECTURE.md): I-FGSM that steps
// along the gradient scaled by its largest entry, g / max|g| per sample, instead of sign(g). Every
// pixel moves by at most alpha, in proportion to its gradient. Distance: l_inf.
// Options used: eps (8/255), alpha (2/255), steps (10), early_stop, targeted.
#include "sdsgsm/attacks.hpp"

namespace sdsgsm {

std::unique_ptr<Attack> make_ifgm(const AttackOptions& options) {
  AttackOptions o = options;
  o.decay = o.decay.value_or(0.0);
  AttackHooks hooks;
  hooks.direction = [](const torch::Tensor& g) {
    const auto peak = g.abs().flatten(1).amax(1).clamp_min(1e-12);
    return g / peak.view({-1, 1, 1, 1});
  };
  return std::make_unique<EngineAttack>("ifgm", o, hooks);
}

}  // namespace sdsgsm
