// Curves and paired statistics against hand-computed cases (sdsgsm/curves.hpp).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sdsgsm/curves.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm::AttackRunResult;
using sdsgsm::Basis;
namespace fs = std::filesystem;

torch::Tensor longs(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }
torch::Tensor reals(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }
torch::Tensor bools(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64).ne(0); }

/// A run over images 0..n-1 with labels 0..n-1; the 8-bit columns equal the float ones unless given.
AttackRunResult make_run(std::vector<int64_t> clean_pred, std::vector<int64_t> success, std::vector<double> l2,
                         std::vector<double> ssim) {
  const auto n = static_cast<int64_t>(l2.size());
  AttackRunResult r;
  r.attack = "test";
  r.config = {{"targeted", "none"}};
  r.index = torch::arange(n, torch::kInt64);
  r.label = torch::arange(n, torch::kInt64);
  r.target = torch::full({n}, -1, torch::kInt64);
  r.clean_pred = longs(clean_pred);
  r.success = r.success_8bit = bools(success);
  r.l2 = r.l2_8bit = reals(l2);
  r.ssim = r.ssim_8bit = reals(ssim);
  return r;
}

// Sample 5 is misclassified before the attack: it never counts, whatever its figures.
AttackRunResult run_a() {
  auto r = make_run({0, 1, 2, 3, 4, 9}, {1, 1, 0, 1, 1, 1}, {0.1, 0.3, 0.5, 0.2, 0.4, 5.0},
                    {0.99, 0.95, 0.90, 0.97, 0.92, 0.5});
  r.success_8bit = bools({1, 0, 0, 1, 1, 1});
  r.l2_8bit = reals({0.11, 0.3, 0.5, 0.21, 0.4123, 5.0});
  return r;
}
AttackRunResult run_b() {
  return make_run({0, 1, 2, 3, 4, 9}, {1, 1, 1, 0, 1, 1}, {0.1, 0.2, 0.3, 0.1, 0.6, 0.01},
                  {0.99, 0.99, 0.99, 0.99, 0.99, 0.99});
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  EXPECT_TRUE(sdsgsm_test::Contains(sdsgsm_test::error_message(f), part));
}

void expect_values(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "at " << i;
}

TEST(Curves, AsrWithinL2BudgetCountsOnlyCorrectSamples) {
  auto a = run_a();
  // Counted: samples 0-4 (5); fooled among them: l2 0.1, 0.3, 0.2, 0.4.
  expect_values(sdsgsm::asr_within_l2(a, {0, 0.1, 0.25, 0.4, 10}, Basis::Float), {0, 0.2, 0.4, 0.8, 0.8});
  // 8-bit: sample 1 is no longer fooled; l2 0.11, 0.21, 0.4123.
  expect_values(sdsgsm::asr_within_l2(a, {0.1, 0.11, 0.4, 0.42}, Basis::Rounded8bit), {0, 0.2, 0.4, 0.6});
}

TEST(Curves, AsrAboveSsimFloor) {
  auto a = run_a();
  // Fooled counted SSIMs: 0.99, 0.95, 0.97, 0.92.
  expect_values(sdsgsm::asr_above_ssim(a, {0.9, 0.95, 0.96, 0.99, 1.0}, Basis::Float), {0.8, 0.6, 0.4, 0.2, 0});
}

TEST(Curves, TargetedRunsCountOnlySamplesWhoseTargetDiffers) {
  auto a = run_a();
  a.config = {{"targeted", "random"}};
  a.target = longs({1, 1, 0, 0, 0, 0});  // sample 1's target is its label
  EXPECT_EQ(sdsgsm::counted_samples(a).sum().item<int64_t>(), 4);
  expect_values(sdsgsm::asr_within_l2(a, {10}, Basis::Float), {0.75});
}

TEST(Curves, NoCountedSampleGivesZeroNotNaN) {
  auto r = make_run({1, 0}, {1, 1}, {0.1, 0.1}, {1, 1});
  expect_values(sdsgsm::asr_within_l2(r, {0, 1}, Basis::Float), {0, 0});
  expect_values(sdsgsm::asr_above_ssim(r, {0.9}, Basis::Rounded8bit), {0});
}

TEST(Curves, DefaultGridSpansEveryRunsLargestCountedL2) {
  auto a = run_a(), b = run_b();
  // Largest fooled counted l2: a float 0.4, a 8-bit 0.4123, b 0.6 (sample 5's 5.0 does not count).
  auto g = sdsgsm::default_grid({&a, &b}, 51);
  ASSERT_EQ(g.l2_budgets.size(), 51u);
  EXPECT_EQ(g.l2_budgets.front(), 0.0);
  EXPECT_NEAR(g.l2_budgets.back(), 0.6, 1e-12);
  EXPECT_NEAR(g.l2_budgets[1], 0.012, 1e-12);
  ASSERT_EQ(g.ssim_floors.size(), 51u);
  EXPECT_NEAR(g.ssim_floors.front(), 0.9, 1e-12);
  EXPECT_EQ(g.ssim_floors.back(), 1.0);
  // Rounded up to two significant digits: 0.4123 -> 0.42, and the last point holds the ASR.
  auto g2 = sdsgsm::default_grid({&a}, 3);
  expect_values(g2.l2_budgets, {0, 0.21, 0.42});
  EXPECT_NEAR(sdsgsm::asr_within_l2(a, {g2.l2_budgets.back()}, Basis::Rounded8bit)[0], 0.6, 1e-12);
  auto none = make_run({0}, {0}, {0.3}, {1});
  expect_values(sdsgsm::default_grid({&none}, 3).l2_budgets, {0, 0.5, 1});
  expect_error([&] { sdsgsm::default_grid({&a}, 1); }, "at least 2 points");
}

TEST(Curves, AttackAndEpsCurves) {
  auto a = run_a();
  sdsgsm::CurveGrid g{{0, 1}, {0.9, 1}};
  auto c = sdsgsm::attack_curves("A", a, g);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].curve, "l2_budget");
  EXPECT_EQ(c[0].basis, "float");
  expect_values(c[0].asr, {0, 0.8});
  EXPECT_EQ(c[3].curve, "ssim_floor");
  EXPECT_EQ(c[3].basis, "8bit");
  expect_values(c[3].asr, {0.6, 0});
  auto e = sdsgsm::eps_curves({"I-FGSM", {1 / 255.0, 2 / 255.0}, {0.5, 0.9}, {0.4, 0.85}});
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].basis, "8bit");
  expect_values(e[1].asr, {0.4, 0.85});
  expect_error([] { sdsgsm::eps_curves({"X", {1, 2}, {0.5}, {0.5, 0.6}}); }, "eps curve of 'X' has 2 eps but 1 and 2");
}

TEST(Paired, HandComputedCaseWithATie) {
  auto a = run_a(), b = run_b();
  // Both fool (counted): samples 0, 1, 4. a - b: 0 (tie), +0.1, -0.2.
  auto s = sdsgsm::paired_l2("A", a, "B", b, Basis::Float, {2000, 0.95, 7});
  EXPECT_EQ(s.n, 3);
  EXPECT_NEAR(s.mean_diff, -0.1 / 3, 1e-12);
  EXPECT_NEAR(s.mean_a, 0.8 / 3, 1e-12);
  EXPECT_NEAR(s.mean_b, 0.9 / 3, 1e-12);
  EXPECT_NEAR(s.a_smaller, 1.0 / 3, 1e-12);
  EXPECT_NEAR(s.b_smaller, 1.0 / 3, 1e-12);
  EXPECT_NEAR(s.ties, 1.0 / 3, 1e-12);
  // Every resampled mean lies within [min, max] of the differences.
  EXPECT_LE(s.ci_low, s.mean_diff);
  EXPECT_GE(s.ci_high, s.mean_diff);
  EXPECT_GE(s.ci_low, -0.2 - 1e-12);
  EXPECT_LE(s.ci_high, 0.1 + 1e-12);
  EXPECT_LT(s.ci_low, s.ci_high);
  // 8-bit: sample 1 is not fooled by a any more; samples 0 and 4 remain: 0.11 - 0.1, 0.4123 - 0.6.
  auto q = sdsgsm::paired_l2("A", a, "B", b, Basis::Rounded8bit);
  EXPECT_EQ(q.n, 2);
  EXPECT_NEAR(q.mean_diff, (0.01 - 0.1877) / 2, 1e-12);
  EXPECT_NEAR(q.a_smaller, 0.5, 1e-12);
  EXPECT_NEAR(q.ties, 0, 1e-12);
}

TEST(Paired, ConstantDifferenceHasAZeroWidthInterval) {
  auto a = make_run({0, 1, 2, 3}, {1, 1, 1, 1}, {0.30, 0.55, 0.80, 1.05}, {1, 1, 1, 1});
  auto b = make_run({0, 1, 2, 3}, {1, 1, 1, 1}, {0.25, 0.50, 0.75, 1.00}, {1, 1, 1, 1});
  auto s = sdsgsm::paired_l2("A", a, "B", b, Basis::Float);
  EXPECT_NEAR(s.mean_diff, 0.05, 1e-12);
  EXPECT_NEAR(s.ci_low, 0.05, 1e-12);
  EXPECT_NEAR(s.ci_high, 0.05, 1e-12);
  EXPECT_EQ(s.b_smaller, 1.0);
}

TEST(Paired, EmptyIntersectionIsNaNAndPrintsDashes) {
  auto a = make_run({0, 1}, {1, 0}, {0.1, 0.2}, {1, 1});
  auto b = make_run({0, 1}, {0, 1}, {0.1, 0.2}, {1, 1});
  auto s = sdsgsm::paired_l2("A", a, "B", b, Basis::Float);
  EXPECT_EQ(s.n, 0);
  EXPECT_TRUE(std::isnan(s.mean_diff));
  EXPECT_TRUE(std::isnan(s.ci_low));
  EXPECT_EQ(s.a_smaller + s.b_smaller + s.ties, 0.0);
  auto j = sdsgsm::paired_json({s});
  EXPECT_TRUE(j[0]["mean_diff"].is_null());
  EXPECT_NE(sdsgsm::paired_markdown({s}).find("| A | B | float | 0 | - |"), std::string::npos);
  auto back = sdsgsm::paired_from_json(j);
  EXPECT_TRUE(std::isnan(back[0].ci_high));
  EXPECT_NE(sdsgsm::paired_csv({s}).find("A,B,float,0,,,,,,0,0,0,2000,0.95,0"), std::string::npos);
}

/// n images whose differences cycle through -0.3 .. +0.5 (mean 0.1).
std::pair<AttackRunResult, AttackRunResult> spread_pair(int64_t n) {
  std::vector<int64_t> pred(n), ok(n, 1);
  std::vector<double> la(n), lb(n, 1.0), ss(n, 1.0);
  for (int64_t i = 0; i < n; ++i) {
    pred[i] = i;
    la[i] = 1.0 + (-0.3 + 0.2 * (i % 5));
  }
  return {make_run(pred, ok, la, ss), make_run(pred, ok, lb, ss)};
}

TEST(Paired, IntervalContainsTheMeanAndShrinksWithN) {
  auto [a1, b1] = spread_pair(20);
  auto [a2, b2] = spread_pair(2000);
  auto small = sdsgsm::paired_l2("A", a1, "B", b1, Basis::Float, {1000, 0.95, 1});
  auto large = sdsgsm::paired_l2("A", a2, "B", b2, Basis::Float, {1000, 0.95, 1});
  EXPECT_NEAR(small.mean_diff, 0.1, 1e-12);
  EXPECT_NEAR(large.mean_diff, 0.1, 1e-12);
  for (const auto* s : {&small, &large}) {
    EXPECT_LT(s->ci_low, s->mean_diff);
    EXPECT_GT(s->ci_high, s->mean_diff);
  }
  // The standard error falls as 1/sqrt(n): 10x here; allow for the bootstrap's own noise.
  const double w_small = small.ci_high - small.ci_low, w_large = large.ci_high - large.ci_low;
  EXPECT_GT(w_small / w_large, 6.0);
  EXPECT_LT(w_small / w_large, 15.0);
  // Normal approximation for n = 2000: sd of the differences 0.2828, 1.96 sd / sqrt(n) = 0.0124.
  EXPECT_NEAR(large.ci_high - large.mean_diff, 0.0124, 0.002);
}

TEST(Paired, DeterministicForASeed) {
  auto [a, b] = spread_pair(50);
  auto s1 = sdsgsm::paired_l2("A", a, "B", b, Basis::Float, {500, 0.95, 42});
  auto s2 = sdsgsm::paired_l2("A", a, "B", b, Basis::Float, {500, 0.95, 42});
  auto s3 = sdsgsm::paired_l2("A", a, "B", b, Basis::Float, {500, 0.95, 43});
  EXPECT_EQ(s1.ci_low, s2.ci_low);
  EXPECT_EQ(s1.ci_high, s2.ci_high);
  EXPECT_TRUE(s1.ci_low != s3.ci_low || s1.ci_high != s3.ci_high);
  EXPECT_EQ(sdsgsm::paired_csv({s1}), sdsgsm::paired_csv({s2}));
}

TEST(Paired, RefusesRunsOnOtherImagesAndBadOptions) {
  auto a = run_a(), b = run_b();
  b.index = b.index + 1;
  expect_error([&] { sdsgsm::paired_l2("A", a, "B", b, Basis::Float); },
               "cannot pair 'A' and 'B': they were not run on the same images");
  auto c = make_run({0}, {1}, {0.1}, {1});
  expect_error([&] { sdsgsm::paired_l2("A", a, "C", c, Basis::Float); }, "cannot pair 'A' and 'C'");
  expect_error([&] { sdsgsm::paired_l2("A", a, "A", a, Basis::Float, {0, 0.95, 0}); }, "at least 1 resample");
  expect_error([&] { sdsgsm::paired_l2("A", a, "A", a, Basis::Float, {10, 1.0, 0}); }, "level must be in (0,1)");
}

TEST(Writers, CsvJsonAndMarkdown) {
  std::vector<sdsgsm::Curve> curves = {{"I-FGSM, tuned", "l2_budget", "float", {0, 0.5}, {0, 0.75}}};
  EXPECT_EQ(sdsgsm::curves_csv(curves),
            "attack,curve,basis,x,asr\n\"I-FGSM, tuned\",l2_budget,float,0,0\n"
            "\"I-FGSM, tuned\",l2_budget,float,0.5,0.75\n");
  auto back = sdsgsm::curves_from_json(sdsgsm::curves_json(curves));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].attack, "I-FGSM, tuned");
  expect_values(back[0].asr, {0, 0.75});
  expect_error([] { sdsgsm::curves_from_json(nlohmann::json::parse(R"([{"attack":1}])")); },
               "curves.json is not a list of curves");
  auto a = run_a(), b = run_b();
  auto s = sdsgsm::paired_l2("A", a, "B", b, Basis::Float, {2000, 0.95, 7});
  const std::string md = sdsgsm::paired_markdown({s});
  EXPECT_NE(
      md.find(fmt::format("| A | B | float | 3 | 0.267 | 0.300 | -0.033 [{:+.3f}, {:+.3f}] | 33.3% | 33.3% | 33.3% |",
                          s.ci_low, s.ci_high)),
      std::string::npos)
      << md;
  auto j = sdsgsm::paired_from_json(sdsgsm::paired_json({s}));
  EXPECT_EQ(j[0].n, 3);
  EXPECT_EQ(j[0].ci_low, s.ci_low);
  EXPECT_EQ(j[0].seed, 7u);
}

TEST(Writers, ComparisonFiguresWriteFourFiles) {
  sdsgsm_test::TempDir dir;
  auto a = run_a(), b = run_b(), c = run_b();
  sdsgsm::EpsCurve e{"A", {0.01, 0.02}, {0.5, 0.8}, {0.4, 0.8}};
  const std::string md = sdsgsm::write_comparison_figures(dir.path(), {"A", "B", "C"}, {&a, &b, &c}, {e});
  for (const char* f : {"curves.csv", "curves.json", "paired.csv", "paired.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  auto curves = sdsgsm::curves_from_json(nlohmann::json::parse(sdsgsm::read_file(dir / "curves.json")));
  EXPECT_EQ(curves.size(), 3u * 4 + 2);
  auto pairs = sdsgsm::paired_from_json(nlohmann::json::parse(sdsgsm::read_file(dir / "paired.json")));
  ASSERT_EQ(pairs.size(), 6u);  // 3 pairs x 2 bases
  EXPECT_EQ(pairs[2].a, "B");
  EXPECT_EQ(pairs[2].b, "C");
  EXPECT_EQ(pairs[2].ties, 1.0);  // identical runs
  EXPECT_EQ(pairs[3].basis, "8bit");
  EXPECT_NE(md.find("| B | C | 8bit |"), std::string::npos);
}

}  // namespace
