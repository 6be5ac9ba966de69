// SD-SGSM and its ablation variants as configurations of the common engine (hooks: the DDI
// allocation map, the tanh direction, optional momentum). See include/sdsgsm/sdsgsm.hpp.
//   sdsgsm   : M from DDI, direction tanh(beta * g / sigma(g))
//   sd-ifgsm : M from DDI, direction sign(g)
//   sgsm     : M = 1,      direction tanh(beta * g / sigma(g))
// Defaults: eps 8/255, 10 steps, early stop on, alpha = eps / steps * step_factor, decay 0 (no momentum),
// hard map, rho 0.05, lambda 0.8, beta 0.5, step factor 1.5, windows of half the image's sides with that
// stride (a 2 x 2 grid at any size: 16 x 16 with stride 16 on 32 x 32, the tuning sweeps' choice,
// docs/sweep-refine; its DDI costs less than the iterations).
#include <fmt/format.h>

#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

const char kSdsgsm[] = "sdsgsm";
const char kSdIfgsm[] = "sd-ifgsm";
const char kSgsm[] = "sgsm";

std::unique_ptr<Attack> make_sdsgsm_variant(const std::string& variant, const AttackOptions& options,
                                            const SdsgsmOptions& sd, std::shared_ptr<SensitivityCache> cache) {
  const bool allocate = variant == kSdsgsm || variant == kSdIfgsm;
  const bool smooth = variant == kSdsgsm || variant == kSgsm;
  if (!allocate && !smooth) throw Error(fmt::format("unknown SD-SGSM variant '{}'", variant));
  sd.validate(-1, -1);
  AttackOptions o = options;
  o.alpha = o.alpha_or(o.eps / static_cast<double>(o.steps) * sd.step_factor);
  o.decay = o.decay.value_or(0.0);
  o.early_stop = o.early_stop.value_or(true);
  AttackHooks hooks;
  hooks.momentum = *o.decay > 0;
  hooks.parameters = {{"direction", smooth ? "tanh" : "sign"}};
  if (smooth) hooks.parameters["beta"] = sd.beta;
  if (allocate) {
    nlohmann::json p = sd.to_json();
    p.erase("beta");
    p.erase("step_factor");
    hooks.parameters.update(p);
  }
  if (!options.alpha) hooks.parameters["step_factor"] = sd.step_factor;
  if (smooth) {
    const double beta = sd.beta;
    hooks.direction = [beta](const torch::Tensor& g) { return smoothed_sign(g, beta); };
  }
  if (allocate) {
    if (cache && cache->options().to_json() != sd.ddi.to_json()) {
      throw Error("internal: the sensitivity cache was made with other DDI options");
    }
    hooks.check_input = [sd](const torch::Tensor& x) { sd.validate(x.size(2), x.size(3)); };
    hooks.allocation = [sd, cache](Classifier& model, const AllocationInput& in) {
      auto s = cache && in.iteration == 0 ? cache->get(model, in.x, in.y, in.ids, in.logits)
                                          : sensitivity_map(model, in.x, in.y, sd.ddi, in.logits);
      return allocation_from_sensitivity(s, sd);
    };
    hooks.allocation_passes = [ddi = sd.ddi](int64_t h, int64_t w) { return ddi_windows(h, w, ddi).size(0); };
    hooks.rescale_step = sd.rescale_step;
    hooks.reallocate_every = sd.recompute_every;
  }
  return std::make_unique<EngineAttack>(variant, o, hooks);
}

}  // namespace sdsgsm
