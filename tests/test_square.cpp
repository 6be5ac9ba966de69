// Square (src/attacks/square.cpp) on images of every shape: portrait, landscape, one pixel high or
// wide, odd sizes; and its two window schedules.
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

struct Shape {
  int64_t h, w;
};

AttackResult run_square(Classifier& model, const torch::Tensor& x, const AttackOptions& o) {
  auto y = model.forward(x).argmax(1);
  auto ids = torch::arange(0, x.size(0), torch::kInt64);
  return make_attack(kSquare, o)->run(model, x, y, ids);
}

}  // namespace

// A window fits every shape: a 40x20 (portrait) image used to draw the window's column modulo a
// non-positive number. Each result stays in the eps ball and in [0,1], for both schedules.
TEST(Square, EveryShapeStaysInTheBallAndTheBox) {
  for (const Shape s : {Shape{20, 40}, Shape{40, 20}, Shape{1, 16}, Shape{16, 1}, Shape{1, 1}, Shape{7, 5}, Shape{5, 9}}) {
    for (const std::string schedule : {"stretched", "autoattack"}) {
      SCOPED_TRACE(fmt::format("{}x{} {}", s.h, s.w, schedule));
      LinearClassifier model(4, 3, s.h, s.w, 5);
      auto gen = at::detail::createCPUGenerator(3);
      auto x = torch::rand({3, 3, s.h, s.w}, gen, torch::kFloat32);
      const double eps = 4.0 / 255;
      auto r = run_square(model, x, AttackOptions().set_eps(eps).set_steps(300).set_square_schedule(schedule));
      EXPECT_LE((r.adversarial - x).abs().max().item<double>(), eps * (1 + 1e-6));
      EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
      EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
      EXPECT_EQ(r.adversarial.sizes(), x.sizes());
      // At most --steps queries per image.
      EXPECT_LE(r.forward_passes.max().item<int64_t>(), 300 + 1);
    }
  }
}

// The schedules: the same at 10,000 queries (stretched is the 10,000-query schedule scaled to the
// budget), different below it; the configuration names the one run; a bad name is refused.
TEST(Square, SchedulesDifferOnlyBelowTenThousandQueries) {
  LinearClassifier model(10, 3, 6, 6, 2);
  auto gen = at::detail::createCPUGenerator(4);
  auto x = torch::rand({2, 3, 6, 6}, gen, torch::kFloat32);
  const double eps = 0.2 / 255;  // too small to fool: every query is spent
  auto at = [&](int64_t steps, const char* schedule) {
    return run_square(model, x, AttackOptions().set_eps(eps).set_steps(steps).set_square_schedule(schedule)).adversarial;
  };
  EXPECT_TRUE(torch::equal(at(10000, "stretched"), at(10000, "autoattack")));
  EXPECT_FALSE(torch::equal(at(400, "stretched"), at(400, "autoattack")));
  auto a = make_attack(kSquare, AttackOptions().set_square_schedule("autoattack"));
  EXPECT_EQ(a->config().at("schedule"), "autoattack");
  EXPECT_EQ(AttackOptions().to_json().count("square_schedule"), 0u);  // the default is not written
  EXPECT_EQ(AttackOptions::from_json(AttackOptions().set_square_schedule("autoattack").to_json()).square_schedule,
            "autoattack");
  const std::string msg = error_message([] { make_attack(kSquare, AttackOptions().set_square_schedule("fast")); });
  EXPECT_TRUE(Contains(msg, "--square-schedule must be stretched or autoattack (got 'fast')")) << msg;
}

// l2 (--norm 2, radius 0.5) and l1 (--norm 1, radius 2): every shape, both schedules; the result
// stays in the ball and in [0,1], and every sample moves.
TEST(Square, L2AndL1EveryShapeStaysInTheBallAndTheBox) {
  for (const auto& [norm, eps] : std::vector<std::pair<Norm, double>>{{Norm::L2, 0.5}, {Norm::L1, 2.0}}) {
    for (const Shape s : {Shape{20, 40}, Shape{40, 20}, Shape{1, 16}, Shape{16, 1}, Shape{1, 1}, Shape{7, 5},
                          Shape{5, 9}, Shape{32, 32}}) {
      for (const std::string schedule : {"stretched", "autoattack"}) {
        SCOPED_TRACE(fmt::format("{} {}x{} {}", to_string(norm), s.h, s.w, schedule));
        LinearClassifier model(4, 3, s.h, s.w, 5);
        auto gen = at::detail::createCPUGenerator(3);
        auto x = torch::rand({3, 3, s.h, s.w}, gen, torch::kFloat32);
        auto r = run_square(model, x, AttackOptions().set_eps(eps).set_norm(norm).set_steps(200).set_square_schedule(schedule));
        const auto d = (r.adversarial - x).to(torch::kFloat64).flatten(1);
        const auto used = norm == Norm::L2 ? d.norm(2, 1) : d.abs().sum(1);
        EXPECT_LE(used.max().item<double>(), eps * (1 + 1e-5));
        EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
        EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
        EXPECT_EQ(r.adversarial.sizes(), x.sizes());
        EXPECT_FALSE(torch::isnan(r.adversarial).any().item<bool>());
        EXPECT_LE(r.forward_passes.max().item<int64_t>(), 200 + 1);
        EXPECT_TRUE(used.gt(0).all().item<bool>());  // every sample moved (no pixel sits on the box)
      }
    }
  }
}

// With the box out of reach (pixels in [0.4, 0.6], eps below 0.1 per pixel on average) every
// candidate lies on the sphere of radius eps.
TEST(Square, L2CandidatesLieOnTheSphere) {
  LinearClassifier model(10, 3, 8, 8, 7);
  auto gen = at::detail::createCPUGenerator(5);
  auto x = 0.4 + 0.2 * torch::rand({4, 3, 8, 8}, gen, torch::kFloat32);
  const double eps = 0.02;  // far from every boundary: no sample is fooled, every query spent
  auto r = run_square(model, x, AttackOptions().set_eps(eps).set_norm(Norm::L2).set_steps(50));
  EXPECT_FALSE(r.success.any().item<bool>());
  auto used = (r.adversarial - x).to(torch::kFloat64).flatten(1).norm(2, 1);
  EXPECT_TRUE(torch::allclose(used, torch::full_like(used, eps), 1e-4, 0)) << used;
  EXPECT_EQ(r.forward_passes.min().item<int64_t>(), 50 + 1);  // the clean pass and 50 queries
}

// A two-class linear model: its minimal l2 perturbation is |margin| / ||w_y - w_o||_2 (the box
// does not bind for images in [0.3, 0.7] and these radii). Below it nothing is fooled; at 2.5x it
// every image is, within the radius; the configuration names the norm; the same seed gives the same
// result and a batch gives what each sample gives alone.
TEST(Square, L2FoolsALinearModelPastItsMinimalDistance) {
  LinearClassifier model(2, 3, 8, 8, 11);
  auto gen = at::detail::createCPUGenerator(9);
  auto x = 0.3 + 0.4 * torch::rand({6, 3, 8, 8}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  auto logits = torch::addmm(model.bias, x.to(torch::kFloat64).flatten(1), model.weight.t());
  auto ids = torch::arange(0, x.size(0), torch::kInt64);
  for (int64_t i = 0; i < x.size(0); ++i) {
    SCOPED_TRACE(i);
    const int64_t yi = y[i].item<int64_t>();
    const double dist = ((logits[i][yi] - logits[i][1 - yi]) / (model.weight[yi] - model.weight[1 - yi]).norm(2)).item<double>();
    ASSERT_LT(2.5 * dist, 0.3 * 8) << "test set-up: the box must not bind";
    auto xi = x.narrow(0, i, 1), yi_t = y.narrow(0, i, 1), id = ids.narrow(0, i, 1);
    auto below = make_attack(kSquare, AttackOptions().set_eps(0.9 * dist).set_norm(Norm::L2).set_steps(300));
    EXPECT_FALSE(below->run(model, xi, yi_t, id).success[0].item<bool>());
    auto past = make_attack(kSquare, AttackOptions().set_eps(2.5 * dist).set_norm(Norm::L2).set_steps(1000));
    auto r = past->run(model, xi, yi_t, id);
    EXPECT_TRUE(r.success[0].item<bool>());
    EXPECT_LE((r.adversarial - xi).norm(2).item<double>(), 2.5 * dist * (1 + 1e-5));
    EXPECT_LT(r.forward_passes[0].item<int64_t>(), 1000 + 1);  // it stopped at its first success
  }
  auto a = make_attack(kSquare, AttackOptions().set_eps(1.0).set_norm(Norm::L2).set_steps(200));
  EXPECT_EQ(a->config().at("norm"), "l2");
  EXPECT_EQ(make_attack(kSquare, AttackOptions())->config().at("norm"), "linf");
  auto whole = a->run(model, x, y, ids);
  EXPECT_TRUE(torch::equal(whole.adversarial, a->run(model, x, y, ids).adversarial));
  auto h1 = a->run(model, x.narrow(0, 0, 2), y.narrow(0, 0, 2), ids.narrow(0, 0, 2));
  auto h2 = a->run(model, x.narrow(0, 2, 4), y.narrow(0, 2, 4), ids.narrow(0, 2, 4));
  EXPECT_TRUE(torch::allclose(whole.adversarial, torch::cat({h1.adversarial, h2.adversarial}), 0, 1e-6));
  // An l2 radius may exceed 1; it must be positive.
  EXPECT_NO_THROW(make_attack(kSquare, AttackOptions().set_eps(3).set_norm(Norm::L2)));
  EXPECT_TRUE(Contains(error_message([] { make_attack(kSquare, AttackOptions().set_eps(0).set_norm(Norm::L2)); }), "--eps"));
}

// A two-class linear model: its smallest l1 perturbation within the box puts the margin on the
// values with the largest |w_y - w_o| first, each as far as the box lets it (a fractional
// knapsack). Below it nothing is fooled; well past it every image is, within the radius; a batch
// gives what each sample gives alone; the l1 search spends the whole radius where the box allows.
TEST(Square, L1FoolsALinearModelPastItsMinimalDistance) {
  LinearClassifier model(2, 3, 8, 8, 11);
  auto gen = at::detail::createCPUGenerator(9);
  auto x = 0.3 + 0.4 * torch::rand({6, 3, 8, 8}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  auto logits = torch::addmm(model.bias, x.to(torch::kFloat64).flatten(1), model.weight.t());
  auto ids = torch::arange(0, x.size(0), torch::kInt64);
  for (int64_t i = 0; i < x.size(0); ++i) {
    SCOPED_TRACE(i);
    const int64_t yi = y[i].item<int64_t>();
    auto d = (model.weight[yi] - model.weight[1 - yi]).to(torch::kFloat64);
    auto xi64 = x[i].to(torch::kFloat64).flatten();
    double margin = (logits[i][yi] - logits[i][1 - yi]).item<double>(), dist = 0;
    auto room = torch::where(d.gt(0), xi64, 1 - xi64);  // lowering d.x: down where d > 0, up where d < 0
    auto order = std::get<1>(d.abs().sort(0, /*descending=*/true));
    for (int64_t k = 0; k < order.size(0) && margin > 0; ++k) {
      const int64_t j = order[k].item<int64_t>();
      const double a = std::abs(d[j].item<double>()), r = room[j].item<double>();
      const double take = std::min(r, margin / a);
      dist += take;
      margin -= take * a;
    }
    ASSERT_LE(margin, 0) << "test set-up: the box must let the model be fooled";
    auto xi = x.narrow(0, i, 1), yi_t = y.narrow(0, i, 1), id = ids.narrow(0, i, 1);
    auto below = make_attack(kSquare, AttackOptions().set_eps(0.9 * dist).set_norm(Norm::L1).set_steps(300));
    EXPECT_FALSE(below->run(model, xi, yi_t, id).success[0].item<bool>());
    auto past = make_attack(kSquare, AttackOptions().set_eps(4 * dist).set_norm(Norm::L1).set_steps(1000));
    auto r = past->run(model, xi, yi_t, id);
    EXPECT_TRUE(r.success[0].item<bool>());
    EXPECT_LE((r.adversarial - xi).abs().sum().item<double>(), 4 * dist * (1 + 1e-5));
  }
  auto a = make_attack(kSquare, AttackOptions().set_eps(1.0).set_norm(Norm::L1).set_steps(200));
  EXPECT_EQ(a->config().at("norm"), "l1");
  auto whole = a->run(model, x, y, ids);
  EXPECT_TRUE(torch::equal(whole.adversarial, a->run(model, x, y, ids).adversarial));
  auto h1 = a->run(model, x.narrow(0, 0, 2), y.narrow(0, 0, 2), ids.narrow(0, 0, 2));
  auto h2 = a->run(model, x.narrow(0, 2, 4), y.narrow(0, 2, 4), ids.narrow(0, 2, 4));
  EXPECT_TRUE(torch::allclose(whole.adversarial, torch::cat({h1.adversarial, h2.adversarial}), 0, 1e-6));
  auto used = (whole.adversarial - x).to(torch::kFloat64).flatten(1).abs().sum(1);
  EXPECT_TRUE(torch::allclose(used, torch::full_like(used, 1.0 * (1 - 1e-6)), 1e-4, 0)) << used;
}
