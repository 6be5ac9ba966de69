// The saved adversarial: quantised DDN on the 8-bit grid, the 8-bit refinement every attack can
// take (never loses an 8-bit success, shrinks the perturbation), and the model passes each
// sample is charged with (forward_passes, backward_passes) against what a counting model saw.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::TinyCnn;

namespace {

/// A classifier that counts the rows it is run on: all of them, and those run with a graph
/// (each followed by one input gradient in the attacks below).
class Counting : public Classifier {
 public:
  explicit Counting(Classifier& inner) : inner_(inner) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    forward_rows += x.size(0);
    if (x.requires_grad()) graph_rows += x.size(0);
    return inner_.forward(x);
  }
  std::string name() const override { return "counting"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return inner_.parameter_count(); }
  int64_t forward_rows = 0, graph_rows = 0;

 private:
  Classifier& inner_;
};

/// Images on the 8-bit grid (as every saved image is).
torch::Tensor grid_images(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return quantize_8bit(torch::rand({n, 3, 8, 8}, gen, torch::kFloat32));
}

torch::Tensor on_grid(const torch::Tensor& x) { return x.eq(quantize_8bit(x)).flatten(1).all(1); }

SdsgsmOptions small_windows() {
  SdsgsmOptions sd;
  sd.ddi.set_window(4).set_stride(4);  // 4 windows on 8 x 8
  return sd;
}

}  // namespace

TEST(Refine, QuantisedDdnIteratesLieOnThe8BitGrid) {
  TinyCnn model(3);
  auto x = grid_images(8, 1);
  auto y = model.forward(x).argmax(1);
  auto r = make_attack("ddn", AttackOptions().set_steps(30))->run(model, x, y);
  ASSERT_TRUE(r.success.any().item<bool>());
  EXPECT_TRUE(on_grid(r.adversarial).all().item<bool>());
  // What the attack reports is what the saved image does.
  auto pred8 = model.forward(quantize_8bit(r.adversarial)).argmax(1);
  EXPECT_TRUE(torch::equal(pred8, r.adv_pred));
  // Without the grid (--levels 0), DDN's iterates are off it.
  auto off = make_attack("ddn", AttackOptions().set_steps(30), SdsgsmOptions(), MinNormOptions().set_levels(0))
                 ->run(model, x, y);
  EXPECT_FALSE(on_grid(off.adversarial.index({off.success})).all().item<bool>());
}

TEST(Refine, MinimumNormAttacksFinishOnTheGrid) {
  TinyCnn model(3);
  auto x = grid_images(8, 2);
  auto y = model.forward(x).argmax(1);
  for (const std::string name : {"deepfool", "cw", "fmn"}) {
    SCOPED_TRACE(name);
    auto r = make_attack(name, AttackOptions().set_steps(50))->run(model, x, y);
    auto ok = r.success;
    ASSERT_TRUE(ok.any().item<bool>());
    // Every success is a grid image that fools the model.
    EXPECT_TRUE(on_grid(r.adversarial.index({ok})).all().item<bool>());
    auto pred8 = model.forward(quantize_8bit(r.adversarial)).argmax(1);
    EXPECT_TRUE(pred8.index({ok}).ne(y.index({ok})).all().item<bool>());
  }
}

TEST(Refine, NeverLosesAn8BitSuccessAndShrinksThePerturbation) {
  TinyCnn model(5);
  auto x = grid_images(12, 3);
  auto y = model.forward(x).argmax(1);
  for (const std::string name : {"ifgsm", "sdsgsm", "fgsm"}) {
    SCOPED_TRACE(name);
    AttackOptions o = AttackOptions().set_eps(16.0 / 255).set_steps(10);
    auto plain = make_attack(name, o, small_windows())->run(model, x, y);
    auto refined = make_attack(name, AttackOptions(o).set_refine(20), small_windows())->run(model, x, y);
    auto ok8 = model.forward(quantize_8bit(plain.adversarial)).argmax(1).ne(y);
    auto ok8_refined = model.forward(quantize_8bit(refined.adversarial)).argmax(1).ne(y);
    ASSERT_GT(ok8.sum().item<int64_t>(), 0);
    // No 8-bit success lost; every refined one is on the grid, inside the budget, and no larger.
    EXPECT_TRUE(ok8_refined.index({ok8}).all().item<bool>());
    EXPECT_TRUE(on_grid(refined.adversarial.index({ok8})).all().item<bool>());
    EXPECT_LE((refined.adversarial - x).abs().max().item<float>(), 16.0f / 255 + 1e-6f);
    auto l2 = l2_distance(x, quantize_8bit(plain.adversarial)).index({ok8});
    auto l2_refined = l2_distance(x, refined.adversarial).index({ok8});
    EXPECT_TRUE(l2_refined.le(l2 + 1e-6).all().item<bool>());
    EXPECT_LT(l2_refined.median().item<double>(), 0.9 * l2.median().item<double>());
    // The refinement charged at most its budget.
    EXPECT_LE((refined.forward_passes - plain.forward_passes).max().item<int64_t>(), 20);
  }
}

TEST(Refine, PassCountsEqualThePassesTheModelRan) {
  TinyCnn inner(3);
  auto x = grid_images(6, 4);
  auto y = inner.forward(x).argmax(1);  // every sample classified correctly
  const int64_t n = x.size(0);
  struct Case {
    std::string name;
    AttackOptions o;
    bool exact_backward;  ///< each graph pass is followed by one input gradient
  };
  const std::vector<Case> cases = {
      {"ifgsm", AttackOptions().set_steps(7).set_early_stop(false), true},
      {"ifgsm", AttackOptions().set_steps(7).set_early_stop(false).set_refine(9), true},
      {"sdsgsm", AttackOptions().set_steps(7).set_early_stop_8bit(true).set_early_stop(true), false},
      {"sdsgsm", AttackOptions().set_steps(7).set_early_stop(false).set_refine(6), true},
      {"ddn", AttackOptions().set_steps(7), true},
      {"fmn", AttackOptions().set_steps(7), true},
      {"cw", AttackOptions().set_steps(7), true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + " " + c.o.to_json().dump());
    Counting model(inner);
    auto r = make_attack(c.name, c.o, small_windows())->run(model, x, y);
    // The run's last pass (the reported prediction) is not the attack's.
    EXPECT_EQ(r.forward_passes.sum().item<int64_t>(), model.forward_rows - n);
    if (c.exact_backward) {
      EXPECT_EQ(r.backward_passes.sum().item<int64_t>(), model.graph_rows);
    }
    EXPECT_TRUE(r.forward_passes.ge(1).all().item<bool>());
  }
  // Plain I-FGSM: the clean pass and one forward and backward pass per step, for every sample.
  auto r = make_attack("ifgsm", AttackOptions().set_steps(7))->run(inner, x, y);
  EXPECT_TRUE(r.forward_passes.eq(8).all().item<bool>());
  EXPECT_TRUE(r.backward_passes.eq(7).all().item<bool>());
  // SD-SGSM without early stop adds DDI's windows (4) to that.
  auto s = make_attack("sdsgsm", AttackOptions().set_steps(7).set_early_stop(false), small_windows())->run(inner, x, y);
  EXPECT_TRUE(s.forward_passes.eq(12).all().item<bool>());
  // DDN: the clean pass, 7 steps and the check of the last iterate.
  auto d = make_attack("ddn", AttackOptions().set_steps(7))->run(inner, x, y);
  EXPECT_TRUE(d.forward_passes.eq(9).all().item<bool>());
  EXPECT_TRUE(d.backward_passes.eq(7).all().item<bool>());
}
