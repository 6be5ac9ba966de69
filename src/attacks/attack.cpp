// What every attack shares: the one success criterion, the context an attack's body works on,
// and Attack::run, the one template every attack runs (see include/sdsgsm/attacks.hpp).
#include <limits>

#include "attack_common.hpp"
#include "refine.hpp"

namespace sdsgsm {

torch::Tensor attack_success(const torch::Tensor& pred, const torch::Tensor& goal, bool targeted) {
  return targeted ? pred.eq(goal) : pred.ne(goal);
}

torch::Tensor attack_margin(const torch::Tensor& logits, const torch::Tensor& goal, bool targeted) {
  torch::Tensor idx = goal.unsqueeze(1);
  torch::Tensor own = logits.gather(1, idx).squeeze(1);
  torch::Tensor other = logits.scatter(1, idx, -std::numeric_limits<float>::infinity()).amax(1);
  return targeted ? other - own : own - other;
}

torch::Tensor attack_success_logits(const torch::Tensor& logits, const torch::Tensor& goal, bool targeted,
                                    double margin) {
  if (margin <= 0) return attack_success(logits.argmax(1), goal, targeted);
  return attack_margin(logits, goal, targeted).lt(-margin);
}

torch::Tensor AttackContext::succeeded(const torch::Tensor& pred, const torch::Tensor& rows) const {
  return attack_success(pred, rows.defined() ? goal().index_select(0, rows) : goal(), targeted);
}

namespace {
void count(torch::Tensor& counter, const torch::Tensor& rows, int64_t k) {
  if (k == 0) return;
  if (!rows.defined()) {
    counter.add_(k);
  } else if (rows.size(0) > 0) {
    counter.index_add_(0, rows, torch::full({rows.size(0)}, k, counter.options()));
  }
}
}  // namespace

void AttackContext::count_forward(const torch::Tensor& rows, int64_t k) { count(r.forward_passes, rows, k); }
void AttackContext::count_backward(const torch::Tensor& rows, int64_t k) { count(r.backward_passes, rows, k); }

AttackResult Attack::run(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& y_in,
                         const torch::Tensor& sample_ids) const {
  detail::check_attack_input(x_in, y_in);
  check_input(x_in);
  const int64_t n = x_in.size(0);
  const torch::Tensor x = x_in.detach().to(torch::kFloat32).contiguous();
  const torch::Tensor y = y_in.detach().to(torch::kInt64);
  // Everything lives on the input's device; per-sample randomness is drawn on the CPU.
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const torch::Tensor ids = sample_ids.defined() ? sample_ids.to(i64) : torch::arange(n, i64);

  AttackResult r;
  r.iterations = torch::zeros({n}, i64);
  r.forward_passes = torch::zeros({n}, i64);
  r.backward_passes = torch::zeros({n}, i64);
  AttackContext c{model, x, y, ids, ids.to(torch::kCPU), {}, options_.targeted != TargetMode::None, r};
  c.clean_logits = detail::clean_pass(model, x, y, options_, c.ids_cpu, r);
  c.count_forward();
  attack(c);
  if (!r.adversarial.defined()) throw Error(fmt::format("internal: attack {} set no adversarial", name_));
  if (options_.refine > 0) detail::refine_8bit(c, options_, refine_bound());
  {
    torch::NoGradGuard ng;
    r.adv_pred = model.forward(r.adversarial).argmax(1);
  }
  r.success = c.succeeded(r.adv_pred);
  return r;
}

}  // namespace sdsgsm
