// DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool
// deep neural networks", CVPR 2016). Distance: l2 or l_inf (--norm). Unbounded: --eps does not apply.
// Each step linearises the logits around the current iterate and moves to the nearest linearised
// class boundary: with f_j = z_j - z_y and w_j = grad f_j over the candidate classes j,
//   l = argmin_j |f_j| / ||w_j||_q                 (q = 2 for l2, 1 for l_inf)
//   r = (|f_l| + 1e-4) w_l / ||w_l||_2^2           (l2)
//   r = (|f_l| + 1e-4) sign(w_l) / ||w_l||_1       (l_inf)
// and x_{t+1} = clip_[0,1](x + (1 + overshoot) sum of r), until the sample is fooled or --steps
// steps are spent. On a linear model the first step reaches the nearest boundary exactly (times
// 1 + overshoot). Candidates: the --candidates classes of the highest clean logits (the label among
// them; 0: all). Targeted: one candidate, the target, against the current highest other class.
// Cost: one forward and `candidates` backward passes per step, for the samples not yet fooled.
// Options used: steps (at most; default 10), candidates (10), overshoot (0.02), norm, targeted.
#include <algorithm>
#include <limits>

#include "minnorm.hpp"

namespace sdsgsm {

const char kDeepfool[] = "deepfool";
namespace {

using detail::MinNormProblem;

class DeepFool final : public detail::MinNormAttack {
 public:
  using MinNormAttack::MinNormAttack;

 protected:
  nlohmann::json parameters() const override {
    return {{"candidates", mn().candidates}, {"overshoot", mn().overshoot}};
  }

  void minimize(MinNormProblem& p) const override {
    const int64_t k = p.clean_logits.size(1);
    const int64_t kc = p.targeted ? 2 : (mn().candidates == 0 ? k : std::min(mn().candidates, k));
    // Untargeted: every sample attacked is classified correctly, so column 0 (the highest clean
    // logit) is its label.
    const torch::Tensor classes = p.targeted ? torch::Tensor() : std::get<1>(p.clean_logits.topk(kc, 1));
    const bool l2 = p.norm == Norm::L2;
    torch::Tensor adv = p.x.clone();
    torch::Tensor total = torch::zeros_like(p.x);
    torch::Tensor active = torch::arange(p.size(), p.label.options());
    for (int64_t t = 0; t < options_.steps && active.size(0) > 0; ++t) {
      torch::Tensor point = adv.index_select(0, active).requires_grad_(true);
      torch::Tensor logits = p.model.forward(point);
      p.count_passes(active, 1);
      torch::Tensor fooled = p.record(point.detach(), logits.detach(), active);
      torch::Tensor keep = fooled.logical_not().nonzero().squeeze(1);
      if (keep.size(0) == 0) return;
      torch::Tensor cols;
      if (p.targeted) {
        torch::Tensor lab = p.label.index_select(0, active).unsqueeze(1);
        torch::Tensor other = logits.detach().scatter(1, lab, -std::numeric_limits<float>::infinity()).argmax(1, true);
        cols = torch::cat({other, lab}, 1);
      } else {
        cols = classes.index_select(0, active);
      }
      torch::Tensor z = logits.gather(1, cols);
      // The gradient of each candidate's logit; the loss is summed over the batch, so each row
      // gets its own sample's gradient.
      std::vector<torch::Tensor> grads;
      for (int64_t c = 0; c < kc; ++c) {
        grads.push_back(torch::autograd::grad({z.select(1, c).sum()}, {point}, {}, /*retain_graph=*/c + 1 < kc)[0]);
      }
      if (p.zero_gradient_samples < 0) {
        p.zero_gradient_samples = grads[0].abs().flatten(1).amax(1).eq(0).sum().item<int64_t>();
      }
      // Only the samples that take the step count it: a sample found fooled here stops here,
      // whichever batch it is in.
      p.count_step(active.index_select(0, keep));
      p.count_passes(active, 0, kc);  // one backward pass per candidate's logit
      torch::NoGradGuard ng;
      torch::Tensor g = torch::stack(grads, 1).index_select(0, keep).flatten(2);  // m x kc x D
      torch::Tensor w = g.narrow(1, 1, kc - 1) - g.narrow(1, 0, 1);
      torch::Tensor zk = z.detach().index_select(0, keep);
      torch::Tensor f = (zk.narrow(1, 1, kc - 1) - zk.narrow(1, 0, 1)).abs();
      torch::Tensor wn = l2 ? w.norm(2, 2) : w.abs().sum(2);
      torch::Tensor l = (f / wn.clamp_min(1e-12)).argmin(1, true);
      torch::Tensor wl = w.gather(1, l.unsqueeze(2).expand({-1, 1, w.size(2)})).squeeze(1);
      torch::Tensor fl = f.gather(1, l).squeeze(1) + 1e-4;
      torch::Tensor r = l2 ? wl * (fl / wl.pow(2).sum(1).clamp_min(1e-12)).unsqueeze(1)
                           : wl.sign() * (fl / wl.abs().sum(1).clamp_min(1e-12)).unsqueeze(1);
      active = active.index_select(0, keep);
      torch::Tensor tot = total.index_select(0, active) + r.view({-1, p.x.size(1), p.x.size(2), p.x.size(3)});
      total.index_copy_(0, active, tot);
      adv.index_copy_(0, active, (p.x.index_select(0, active) + (1 + mn().overshoot) * tot).clamp(0.0, 1.0));
    }
    if (active.size(0) > 0) p.check(adv.index_select(0, active), active);
  }
};

}  // namespace

std::unique_ptr<Attack> make_deepfool(const AttackOptions& options, const MinNormOptions& mn) {
  return std::make_unique<DeepFool>(kDeepfool, options, mn, /*linf=*/true);
}

}  // namespace sdsgsm
