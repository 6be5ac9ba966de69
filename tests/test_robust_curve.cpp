// Robust accuracy as a curve over eps (sdsgsm/robust_curve.hpp): monotone in eps; each radius's
// answer is, per image, the union of separate runs at that radius and every smaller one, and equals
// the separate run where the attacks are monotone in eps; one radius is the single run; the list is
// parsed strictly; the files and the report's chart.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/data.hpp"
#include "sdsgsm/robust_curve.hpp"
#include "sdsgsm/robust_curve_report.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;
using sdsgsm_test::own_labelled_source;
using sdsgsm_test::TinyCnn;

namespace {

RobustOptions quick() {
  return RobustOptions().set_steps(20).set_queries(300).set_check_count(0).set_batch_size(7).set_progress(false);
}

const std::vector<double> kRadii = {1.0 / 255, 2.0 / 255, 4.0 / 255, 8.0 / 255};

}  // namespace

// On a network where the ensemble's attacks need not be monotone in eps: robust accuracy never rises
// with eps, and an image is robust at radius k exactly when separate runs at radius k and at every
// smaller one left it robust (never above a separate run).
TEST(RobustCurve, MonotoneAndTheUnionOfSeparateRuns) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 21, 21, keep, 8);
  const RobustOptions o = quick();
  RobustCurve curve = robust_curve(model, *source, o, kRadii);
  ASSERT_EQ(curve.points.size(), kRadii.size());
  EXPECT_EQ(curve.result.clean_correct, 21);
  EXPECT_LT(curve.points.back().robust, curve.points.front().robust);  // the radii matter here
  const int64_t m = static_cast<int64_t>(o.sequence().size());
  torch::Tensor robust_so_far = torch::ones({21}, torch::kBool);
  for (size_t k = 0; k < kRadii.size(); ++k) {
    SCOPED_TRACE(k);
    if (k > 0) {
      EXPECT_LE(curve.points[k].robust, curve.points[k - 1].robust);
      EXPECT_LE(curve.robust_accuracy(k), curve.robust_accuracy(k - 1));
    }
    RobustResult alone = robust_accuracy(model, *source, RobustOptions(o).set_eps(kRadii[k]));
    robust_so_far = robust_so_far.logical_and(alone.fooled_by.eq(m));
    EXPECT_TRUE(torch::equal(curve.fooled_at.gt(static_cast<int64_t>(k)), robust_so_far));
    EXPECT_EQ(curve.points[k].robust, robust_so_far.sum().item<int64_t>());
    EXPECT_LE(curve.points[k].robust, alone.robust);
    // Each radius attacks exactly the images still robust at the one before it.
    const int64_t before = k == 0 ? curve.result.clean_correct : curve.points[k - 1].robust;
    EXPECT_EQ(curve.points[k].stages.front().attacked, before);
    int64_t fooled = 0;
    for (const auto& s : curve.points[k].stages) fooled += s.fooled;
    EXPECT_EQ(before - fooled, curve.points[k].robust);
  }
  EXPECT_EQ(curve.result.robust, curve.points.back().robust);
  int64_t fooled = 0;
  for (const auto& s : curve.result.stages) fooled += s.fooled;
  EXPECT_EQ(curve.result.clean_correct - fooled, curve.result.robust);
}

// A binary linear model inside the box: FGSM and APGD-CE reach the closed-form worst case (margin
// minus eps ||w_y - w_other||_1), which is monotone in eps, so the curve equals separate runs.
TEST(RobustCurve, EqualsSeparateRunsWhereTheAttacksAreMonotone) {
  LinearClassifier model(2, 3, 4, 4, 5);
  Dataset keep;
  auto source = own_labelled_source(model, 30, 7, keep, 4, 10, 90, 165);  // no pixel reaches the box within 16/255
  RobustOptions o = quick();
  o.attacks = {"fgsm", "apgd-ce"};
  RobustCurve curve = robust_curve(model, *source, o, kRadii);
  EXPECT_GT(curve.points.front().robust, curve.points.back().robust);
  for (size_t k = 0; k < kRadii.size(); ++k) {
    SCOPED_TRACE(k);
    RobustResult alone = robust_accuracy(model, *source, RobustOptions(o).set_eps(kRadii[k]));
    EXPECT_EQ(curve.points[k].robust, alone.robust);
    EXPECT_TRUE(torch::equal(curve.fooled_at.gt(static_cast<int64_t>(k)), alone.fooled_by.eq(2)));
  }
}

// One radius: the single run's result, figure for figure.
TEST(RobustCurve, OneRadiusIsTheSingleRun) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 14, 3, keep, 8);
  const RobustOptions o = quick().set_eps(3.0 / 255).set_check_count(7);
  RobustCurve curve = robust_curve(model, *source, o, {3.0 / 255});
  RobustResult single = robust_accuracy(model, *source, o);
  EXPECT_EQ(curve.result.to_json(), single.to_json());
  EXPECT_TRUE(torch::equal(curve.result.fooled_by, single.fooled_by));
  EXPECT_EQ(parse_eps_list("3/255"), std::vector<double>{3.0 / 255});
}

// The masking checks of a curve are those of a single run at its largest radius: the more-steps
// check sees the first attack at full strength on every one of the first images, including those a
// smaller radius already fooled (the curve itself does not attack them again there).
TEST(RobustCurve, ChecksAreTheLargestRadiusSingleRuns) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 21, 21, keep, 8);
  const RobustOptions o = quick().set_check_count(21);
  RobustCurve curve = robust_curve(model, *source, o, kRadii);
  RobustResult single = robust_accuracy(model, *source, RobustOptions(o).set_eps(kRadii.back()));
  ASSERT_EQ(curve.result.checks.size(), single.checks.size());
  for (size_t i = 0; i < single.checks.size(); ++i) {
    SCOPED_TRACE(single.checks[i].name);
    EXPECT_EQ(curve.result.checks[i].name, single.checks[i].name);
    EXPECT_EQ(curve.result.checks[i].warned, single.checks[i].warned);
    if (single.checks[i].name != "gradient-free") {
      EXPECT_EQ(curve.result.checks[i].detail, single.checks[i].detail);
    }
  }
}

TEST(RobustCurve, TheListIsParsedStrictly) {
  EXPECT_EQ(parse_eps_list("1/255,2/255,0.5"), (std::vector<double>{1.0 / 255, 2.0 / 255, 0.5}));
  auto bad = [](const std::string& text) {
    const std::string m = error_message([&] { parse_eps_list(text); });
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  };
  EXPECT_TRUE(Contains(bad("8/255,,x"), "item 2 of '8/255,,x' is empty"));
  EXPECT_TRUE(Contains(bad("8/255,x"), "'x' is not a number"));
  EXPECT_TRUE(Contains(bad("8/255,4/255"), "strictly increasing"));  // unsorted: refused, not reordered
  EXPECT_TRUE(Contains(bad("4/255,4/255"), "strictly increasing"));  // a duplicate
  EXPECT_TRUE(Contains(bad("4/255,"), "empty item"));
  EXPECT_TRUE(Contains(bad(""), "--eps"));
  // A radius outside the norm's range is refused before any attack runs.
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 3, 3, keep, 8);
  EXPECT_TRUE(Contains(error_message([&] { robust_curve(model, *source, quick(), {-1.0 / 255, 2.0 / 255}); }),
                       "--eps must be in (0,1]"));
  EXPECT_TRUE(Contains(error_message([&] { robust_curve(model, *source, quick(), {2.0 / 255, 1.0 / 255}); }),
                       "strictly increasing"));
}

TEST(RobustCurve, FilesResumeAndChart) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 10, 9, keep, 8);
  sdsgsm_test::TempDir tmp;
  RobustOptions o = quick();
  o.attacks = {"apgd-ce"};
  const std::vector<double> radii = {2.0 / 255, 8.0 / 255};
  RobustCurve first = robust_curve(model, *source, o, radii, tmp.path());
  ASSERT_TRUE(fs::exists(tmp.path() / "curve" / "000000.json"));
  RobustCurve again = robust_curve(model, *source, o, radii, tmp.path());  // read back
  EXPECT_TRUE(torch::equal(first.fooled_at, again.fooled_at));
  EXPECT_EQ(robust_curve_json(first), robust_curve_json(again));

  write_robust_curve_files(tmp.path(), {{"model", "tiny"}}, o.to_json(), first, Norm::Linf, "curve");
  EXPECT_FALSE(fs::exists(tmp.path() / "curve"));
  auto j = nlohmann::json::parse(read_file(tmp.path() / "robust.json"));
  ASSERT_EQ(j["curve"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["robust_options"]["eps"].get<double>(), 8.0 / 255);
  EXPECT_EQ(j["robust_options"]["eps_list"].size(), 2u);
  EXPECT_EQ(j["curve"][1]["robust"].get<int64_t>(), first.points[1].robust);
  EXPECT_EQ(j["robust"].get<int64_t>(), first.points[1].robust);
  EXPECT_EQ(j["curve"][0]["fooled"]["apgd-ce"].get<int64_t>(), first.points[0].stages[0].fooled);
  auto csv = sdsgsm_test::split_lines(read_file(tmp.path() / "robust_curve.csv"));
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0], "eps,eps_255,robust_accuracy,robust,fooled_apgd-ce,seconds");
  EXPECT_EQ(csv[1].rfind("0.00784313725,2,", 0), 0u) << csv[1];
  auto per_image = sdsgsm_test::split_lines(read_file(tmp.path() / "robust.csv"));
  EXPECT_EQ(per_image.size(), 11u);
  EXPECT_EQ(per_image[0], "index,label,clean_pred,fooled_by,fooled_at_eps");
  EXPECT_TRUE(Contains(read_file(tmp.path() / "robust.md"), "| 2/255 |"));
  const std::string html = robust_curve_html(j);
  EXPECT_TRUE(Contains(html, "<svg"));
  EXPECT_TRUE(Contains(html, "Robust accuracy against eps"));
  j.erase("curve");
  EXPECT_EQ(robust_curve_html(j), "");  // a single radius: no chart
}
