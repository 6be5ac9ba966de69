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
