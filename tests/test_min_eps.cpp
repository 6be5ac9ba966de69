// Per-sample minimal eps by bisection.
#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "sdsgsm/min_eps.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/tuning.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;

namespace {

Dataset linear_data(sdsgsm_test::LinearClassifier& model, int64_t n) {
  Dataset d;
  auto gen = at::detail::createCPUGenerator(5);
  auto x = torch::rand({n, 1, 4, 4}, gen) * 0.6 + 0.2;
  d.images = (x * 255).round().to(torch::kUInt8);
  d.labels = model.forward(d.images.to(torch::kFloat32) / 255).argmax(1);
  d.labels[0] = (d.labels[0].item<int64_t>() + 1) % 3;  // one image the model gets wrong
  d.classes = {"a", "b", "c"};
  return d;
}

}  // namespace

TEST(MinEps, BisectionBracketsEachImagesSmallestBudget) {
  sdsgsm_test::LinearClassifier model(3, 1, 4, 4, 2);
  Dataset d = linear_data(model, 10);
  auto make = [](double eps) { return make_attack("ifgsm", AttackOptions().set_eps(eps).set_alpha(eps / 4).set_steps(8)); };
  MinEpsOptions o;
  o.eps_max = 0.5;
  o.rounds = 5;
  o.batch_size = 3;  // groups of one midpoint span several batches
  auto e = minimal_eps(model, d, make, o);
  ASSERT_EQ(e.size(0), 10);
  EXPECT_EQ(e[0].item<double>(), 0.0);  // already misclassified
  const double step = o.eps_max / 32;
  int finite = 0;
  for (int64_t i = 1; i < 10; ++i) {
    const double v = e[i].item<double>();
    auto x = d.float_images(i, 1);
    auto y = d.batch_labels(i, 1);
    auto id = torch::tensor({i}, torch::kInt64);
    if (std::isinf(v)) {
      EXPECT_FALSE(make(o.eps_max)->run(model, x, y, id).success[0].item<bool>()) << i;
      continue;
    }
    ++finite;
    // Success at the bound found, failure one resolution step below it.
    EXPECT_TRUE(make(v)->run(model, x, y, id).success[0].item<bool>()) << i;
    if (v - step > 0) {
      EXPECT_FALSE(make(v - step)->run(model, x, y, id).success[0].item<bool>()) << i;
    }
    EXPECT_NEAR(std::fmod(v, step), 0.0, 1e-12);  // a bisection point
  }
  EXPECT_GT(finite, 0);
  // The same result batch by batch or all at once.
  o.batch_size = 128;
  EXPECT_TRUE(torch::equal(minimal_eps(model, d, make, o), e));
  auto correct = d.labels.eq(model.forward(d.float_images(0, 10)).argmax(1));
  auto s = min_eps_summary(e, correct, o);
  EXPECT_EQ(s["images"], 9);
  EXPECT_DOUBLE_EQ(s["resolution"].get<double>(), step);
  EXPECT_TRUE(Contains(min_eps_csv(torch::arange(10), d.labels, e), "index,label,min_eps\n0,"));
  o.rounds = 0;
  EXPECT_EQ(error_message([&] { minimal_eps(model, d, make, o); }), "--min-eps-rounds must be in [1, 20] (got 0)");
  o.rounds = 6;
  o.eps_max = 1.5;
  EXPECT_EQ(error_message([&] { minimal_eps(model, d, make, o); }), "--eps must be in (0, 1] (got 1.5)");
}
