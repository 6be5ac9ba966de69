// FAB-T (src/attacks/fab.cpp): on a linear model the linearised boundary is the boundary, so FAB-T
// finds the closed-form minimal perturbation |f| / ||w||_dual (l_inf: dual l1; l2: l2) up to its
// overshoot; it keeps to the box [0,1] where the box decides the distance; it takes its targets in
// order (top-2 first); it runs on 2-class models.
#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;

namespace {

double distance(const torch::Tensor& d, Norm norm) {
  if (norm == Norm::L1) return d.abs().sum().item<double>();
  return norm == Norm::Linf ? d.abs().max().item<double>() : d.norm().item<double>();
}

AttackResult fab(Classifier& model, const torch::Tensor& x, double eps, Norm norm, int64_t steps = 100) {
  auto y = model.forward(x).argmax(1);
  return make_attack(kFabT, AttackOptions().set_eps(eps).set_norm(norm).set_steps(steps))
      ->run(model, x, y, torch::arange(0, x.size(0), torch::kInt64));
}

/// A linear model on a 1x1x2 image with the given weights (K x 2) and biases.
LinearClassifier linear2(const std::vector<double>& w, const std::vector<double>& b) {
  LinearClassifier m(static_cast<int64_t>(b.size()), 1, 1, 2);
  m.weight = torch::tensor(w, torch::kFloat64).view({-1, 2});
  m.bias = torch::tensor(b, torch::kFloat64);
  return m;
}

}  // namespace

// Within 3% of the closed form, never below it: fooled at 1.03 d*, not at 0.98 d*.
TEST(Fab, LinearModelClosedFormMinimalPerturbation) {
  LinearClassifier model(10, 3, 4, 4, 7);
  auto gen = at::detail::createCPUGenerator(2);
  auto x = 0.45 + 0.1 * torch::rand({4, 3, 4, 4}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  for (Norm norm : {Norm::Linf, Norm::L2}) {
    for (int64_t i = 0; i < x.size(0); ++i) {
      SCOPED_TRACE(fmt::format("{} image {}", to_string(norm), i));
      const auto xi = x.narrow(0, i, 1);
      const auto z = model.forward(xi).to(torch::kFloat64)[0];
      const int64_t label = y[i].item<int64_t>();
      double best = std::numeric_limits<double>::infinity();
      torch::Tensor step;
      for (int64_t j = 0; j < 10; ++j) {
        if (j == label) continue;
        const auto dw = model.weight[j] - model.weight[label];
        const double gap = (z[label] - z[j]).item<double>();
        const double dual = norm == Norm::Linf ? dw.abs().sum().item<double>() : dw.norm().item<double>();
        if (gap / dual < best) {
          best = gap / dual;
          step = norm == Norm::Linf ? dw.sign() * best : dw / dw.norm() * best;
        }
      }
      // The box does not decide: the unboxed minimal step stays inside [0,1].
      ASSERT_LE((xi.flatten().to(torch::kFloat64) + step).abs().max().item<double>(), 1.0);
      ASSERT_GE((xi.flatten().to(torch::kFloat64) + step).min().item<double>(), 0.0);
      auto r = fab(model, xi, 1.03 * best, norm);
      ASSERT_TRUE(r.success[0].item<bool>());
      const double found = distance(r.adversarial - xi, norm);
      EXPECT_GE(found, best * (1 - 1e-4));
      EXPECT_LE(found, 1.03 * best);
      EXPECT_FALSE(fab(model, xi, 0.98 * best, norm).success[0].item<bool>());
    }
  }
}

// l1: the smallest l1 step onto a linear boundary within [0,1] moves the values with the largest
// |w_t - w_y| first, each as far as the box lets it (computed here value by value, per target t).
// FAB-T finds it within 3%, never below it, and keeps to the l1 ball and the box.
TEST(Fab, L1LinearModelClosedFormWithinTheBox) {
  LinearClassifier model(10, 3, 4, 4, 7);
  auto gen = at::detail::createCPUGenerator(2);
  auto x = 0.45 + 0.1 * torch::rand({4, 3, 4, 4}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  for (int64_t i = 0; i < x.size(0); ++i) {
    SCOPED_TRACE(fmt::format("image {}", i));
    const auto xi = x.narrow(0, i, 1);
    const auto xv = xi.flatten().to(torch::kFloat64);
    const auto z = model.forward(xi).to(torch::kFloat64)[0];
    const int64_t label = y[i].item<int64_t>();
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < 10; ++j) {
      if (j == label) continue;
      const auto dw = (model.weight[j] - model.weight[label]).contiguous();
      double need = (z[label] - z[j]).item<double>(), cost = 0;
      std::vector<std::pair<double, int64_t>> by_size;
      for (int64_t k = 0; k < dw.numel(); ++k) by_size.push_back({-std::abs(dw[k].item<double>()), k});
      std::sort(by_size.begin(), by_size.end());
      for (const auto& [neg, k] : by_size) {
        const double a = -neg, room = dw[k].item<double>() > 0 ? 1 - xv[k].item<double>() : xv[k].item<double>();
        if (a * room >= need) {
          cost += need / a;
          need = 0;
          break;
        }
        cost += room;
        need -= a * room;
      }
      if (need <= 0) best = std::min(best, cost);
    }
    ASSERT_TRUE(std::isfinite(best));
    auto r = fab(model, xi, 1.03 * best, Norm::L1);
    ASSERT_TRUE(r.success[0].item<bool>());
    const double found = distance(r.adversarial - xi, Norm::L1);
    EXPECT_GE(found, best * (1 - 1e-4));
    EXPECT_LE(found, 1.03 * best);
    EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
    EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
    EXPECT_FALSE(fab(model, xi, 0.98 * best, Norm::L1).success[0].item<bool>());
  }
  EXPECT_EQ(make_attack(kFabT, AttackOptions().set_eps(2).set_norm(Norm::L1))->config().at("norm"), "l1");
}

// Where the box decides: from (0, 0.5) the boundary -x0 + x1 = 0.9 is 0.2 away in l_inf (0.28 in
// l2) outside the box, and 0.4 away inside it (x1 up to 0.9; x0 cannot go below 0).
TEST(Fab, KeepsToTheBox) {
  auto model = linear2({0, 0, -1, 1}, {0, -0.9});
  auto x = torch::tensor({0.0f, 0.5f}).view({1, 1, 1, 2});
  for (Norm norm : {Norm::Linf, Norm::L2, Norm::L1}) {
    SCOPED_TRACE(to_string(norm));
    auto r = fab(model, x, 0.42, norm);
    ASSERT_TRUE(r.success[0].item<bool>());
    EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
    EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
    EXPECT_GE(distance(r.adversarial - x, norm), 0.4 - 1e-5);
    EXPECT_FALSE(fab(model, x, 0.38, norm).success[0].item<bool>());
  }
}

// Targets in the clean logits' order: class 1 (second most likely) is 0.3 away, class 2 (third)
// 0.05. With eps 0.35 the first target already succeeds: the adversarial is class 1, 0.3 away; with
// eps 0.06 the first target fails and the second finds class 2. (A sample leaves at its first
// adversarial within eps: here the first step's, 1.05 x 0.3.)
TEST(Fab, TakesItsTargetsInOrder) {
  auto model = linear2({0, 0, 1, 0, 0, 10}, {1, 0.2, -4.5});
  auto x = torch::tensor({0.5f, 0.5f}).view({1, 1, 1, 2});
  ASSERT_EQ(model.forward(x).argmax(1).item<int64_t>(), 0);
  auto wide = fab(model, x, 0.35, Norm::Linf);
  ASSERT_TRUE(wide.success[0].item<bool>());
  EXPECT_EQ(wide.adv_pred[0].item<int64_t>(), 1);
  EXPECT_GE(distance(wide.adversarial - x, Norm::Linf), 0.3 - 1e-6);
  EXPECT_LE(distance(wide.adversarial - x, Norm::Linf), 0.35);
  auto narrow = fab(model, x, 0.06, Norm::Linf);
  ASSERT_TRUE(narrow.success[0].item<bool>());
  EXPECT_EQ(narrow.adv_pred[0].item<int64_t>(), 2);
  EXPECT_LE(distance(narrow.adversarial - x, Norm::Linf), 0.06);
  // 100 steps per target, each one gradient and two forward passes; the clean pass counted too.
  EXPECT_LE(narrow.backward_passes[0].item<int64_t>(), 200);
  EXPECT_GT(narrow.backward_passes[0].item<int64_t>(), 100);
}

// A 2-class model: one target; runs to the end and fools at the closed-form distance.
TEST(Fab, TwoClassModel) {
  auto model = linear2({1, 0, 0, 1}, {0, 0});
  auto x = torch::tensor({0.6f, 0.5f}).view({1, 1, 1, 2});
  auto r = fab(model, x, 0.06, Norm::Linf);  // x0 - x1 = 0.1: l_inf distance 0.05
  ASSERT_TRUE(r.success[0].item<bool>());
  EXPECT_EQ(r.adv_pred[0].item<int64_t>(), 1);
  EXPECT_FALSE(fab(model, x, 0.045, Norm::Linf).success[0].item<bool>());
  EXPECT_TRUE(Contains(error_message([] { make_attack(kFabT, AttackOptions().set_targeted(TargetMode::Random)); }),
                       "--targeted"));
}
