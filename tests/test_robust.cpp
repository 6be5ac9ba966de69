// Robust accuracy (sdsgsm/robust.hpp): the ensemble is never above any of its members, and the
// masking checks fire on a model that hides its gradients and stay silent on the shipped ResNet-20.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_options.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;
using sdsgsm_test::own_labelled_source;
using sdsgsm_test::TinyCnn;

namespace {

/// A linear model behind a hard threshold: logits = W (x > 0.5) + b. Its input gradient is zero
/// everywhere (gradient masking in its purest form), yet images near the threshold are fragile.
class ThresholdClassifier : public Classifier {
 public:
  explicit ThresholdClassifier(int64_t k, uint64_t seed) : linear_(k, 3, 8, 8, seed) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    // 0 * x keeps the graph (the gradient exists, and is zero).
    return linear_.forward(x.gt(0.5).to(torch::kFloat32) + 0 * x);
  }
  std::string name() const override { return "threshold"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return linear_.parameter_count(); }

 private:
  LinearClassifier linear_;
};

RobustOptions quick_robust() {
  return RobustOptions().set_steps(20).set_queries(300).set_check_count(0).set_batch_size(7).set_progress(false);
}

}  // namespace

TEST(Robust, EnsembleIsNeverAboveAnyOfItsMembers) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 30, 21, keep);
  const double eps = 3.0 / 255;
  RobustResult all = robust_accuracy(model, *source, quick_robust().set_eps(eps));
  ASSERT_EQ(all.stages.size(), 4u);
  EXPECT_EQ(all.clean_correct, 30);
  int64_t fooled = 0;
  for (const auto& s : all.stages) fooled += s.fooled;
  EXPECT_EQ(all.robust + fooled, all.clean_correct);
  EXPECT_GT(all.stages[0].fooled, 0);
  EXPECT_LT(all.robust, all.clean_correct);
  for (const std::string member : {"apgd-ce", "apgd-t", "fab-t", "square"}) {
    SCOPED_TRACE(member);
    RobustOptions one = quick_robust().set_eps(eps);
    one.attacks = {member};
    RobustResult r = robust_accuracy(model, *source, one);
    EXPECT_LE(all.robust, r.robust);
    // Each image the ensemble calls robust, the member does too (the same seeds, images and ids).
    auto ensemble_robust = all.fooled_by.eq(4), member_robust = r.fooled_by.eq(1);
    EXPECT_TRUE(member_robust.logical_or(ensemble_robust.logical_not()).all().item<bool>());
  }
  auto csv = sdsgsm_test::split_lines(all.csv());
  EXPECT_EQ(csv.size(), 31u);
  EXPECT_EQ(csv[0], "index,label,clean_pred,fooled_by");
}

TEST(Robust, MaskingChecksFireOnAModelThatHidesItsGradients) {
  ThresholdClassifier model(10, 3);
  Dataset keep;
  auto source = own_labelled_source(model, 40, 5, keep);
  RobustResult r = robust_accuracy(model, *source, quick_robust().set_eps(16.0 / 255).set_queries(500).set_check_count(40));
  ASSERT_EQ(r.checks.size(), 6u);  // the three masking checks, then randomness, probabilities, targets
  // The gradient attacks fool nothing beyond their random starts; Square finds more.
  EXPECT_EQ(r.checks[0].name, "gradient-free");
  EXPECT_TRUE(r.checks[0].warned) << r.checks[0].detail;
  EXPECT_GT(r.stages[3].fooled, 0);
  EXPECT_EQ(r.checks[2].name, "large-eps");
  EXPECT_TRUE(r.checks[2].warned) << r.checks[2].detail;
  EXPECT_GE(r.warnings().size(), 2u);
  EXPECT_TRUE(Contains(r.to_json().dump(), "gradient masking"));
}

SLOW_TEST(Robust, ChecksStaySilentOnTheShippedResNet20) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (find_zoo_weights("resnet20").empty()) GTEST_SKIP() << "no shipped resnet20 weights";
  auto model = load_classifier("resnet20");
  auto source = open_image_source(sdsgsm_test::real_cifar_dir(), Split::Test, 0, 24);
  RobustResult r = robust_accuracy(*model, *source, quick_robust().set_batch_size(24).set_check_count(24));
  EXPECT_EQ(r.robust, 0);  // an undefended network at 8/255
  for (const auto& c : r.checks) {
    EXPECT_FALSE(c.warned) << c.name << ": " << c.detail;
    EXPECT_TRUE(c.ran || c.name == "gradient-free") << c.name;
  }
  EXPECT_TRUE(r.warnings().empty());
}

TEST(Robust, OptionsAreDeclaredOnceWithTheirChecks) {
  const auto& set = robust_option_set();
  RobustOptions o;
  EXPECT_EQ(set.find("ensemble")->get(o), "standard");
  EXPECT_EQ(set.find("square-schedule")->get(o), "autoattack");
  set.find("steps")->parse(o, "7");
  EXPECT_EQ(o.steps, 7);
  EXPECT_NO_THROW(o.validate());
  auto fails = [&](const std::string& word, const std::string& value) {
    RobustOptions bad;
    set.find(word)->parse(bad, value);
    return error_message([&] { bad.validate(); });
  };
  EXPECT_EQ(fails("steps", "0"), "--steps must be >= 1 (got 0)");
  EXPECT_EQ(fails("restarts", "0"), "--restarts must be >= 1 (got 0)");
  EXPECT_EQ(fails("queries", "0"), "--queries must be >= 1 (got 0)");
  EXPECT_EQ(fails("check-count", "-1"), "--check-count must be >= 0 (got -1)");
  EXPECT_EQ(fails("eot-samples", "-2"), "--eot-samples must be >= 0 (got -2)");
  EXPECT_EQ(fails("ensemble", "full"), "--ensemble must be standard, plus, rand or custom (got 'full')");
  EXPECT_EQ(fails("square-schedule", "x"), "--square-schedule must be autoattack or stretched (got 'x')");
}

TEST(Robust, OptionsAreCheckedAndNamed) {
  auto bad = [](RobustOptions o) { return error_message([&] { o.validate(); }); };
  EXPECT_TRUE(Contains(bad(RobustOptions().set_eps(0)), "--eps"));
  EXPECT_TRUE(Contains(bad(RobustOptions().set_steps(0)), "--steps"));
  EXPECT_TRUE(Contains(bad(RobustOptions().set_queries(0)), "--queries"));
  RobustOptions unbounded;
  unbounded.attacks = {"apgd-ce", "deepfool"};
  EXPECT_TRUE(Contains(bad(unbounded), "deepfool is unbounded"));
  RobustOptions l2_square = RobustOptions().set_norm(Norm::L2).set_eps(0.5);
  EXPECT_EQ(l2_square.sequence(), (std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"}));
  EXPECT_NO_THROW(l2_square.validate());
  l2_square.attacks = {"pgd"};
  EXPECT_TRUE(Contains(bad(l2_square), "--norm"));
}

// With a work folder each batch's outcome is kept; a second call (a resumed run) reads them back
// instead of attacking again, and gives the same result.
TEST(Robust, ResumeReadsTheFinishedBatchesBack) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 20, 21, keep);
  sdsgsm_test::TempDir tmp;
  const RobustOptions o = quick_robust().set_eps(3.0 / 255).set_check_count(10);
  RobustResult first = robust_accuracy(model, *source, o, tmp.path());
  ASSERT_TRUE(fs::exists(tmp.path() / "batches" / "000000.json"));
  ASSERT_TRUE(fs::exists(tmp.path() / "checks.json"));
  RobustResult again = robust_accuracy(model, *source, o, tmp.path());
  EXPECT_TRUE(torch::equal(first.fooled_by, again.fooled_by));
  EXPECT_EQ(first.to_json(), again.to_json());
  // What the second call reports is what the folder holds: a batch marked all robust reads back so.
  auto j = nlohmann::json::parse(read_file(tmp.path() / "batches" / "000000.json"));
  for (auto& f : j["fooled_by"]) f = 4;  // robust: the sequence's length
  for (auto& s : j["stages"]) s["fooled"] = 0;
  write_file_atomic(tmp.path() / "batches" / "000000.json", j.dump());
  RobustResult edited = robust_accuracy(model, *source, o, tmp.path());
  EXPECT_EQ(edited.fooled_by.narrow(0, 0, 7).eq(4).sum().item<int64_t>(), 7);
  EXPECT_GE(edited.robust, first.robust);
}
