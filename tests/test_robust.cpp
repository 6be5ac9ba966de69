// APGD and Square, and robust accuracy (sdsgsm/robust.hpp): APGD reaches a linear model's closed-form
// worst case, every attack is deterministic and independent of its batch, the ensemble is never
// above any of its members, and the masking checks fire on a model that hides its gradients and
// stay silent on the shipped ResNet-20.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/transfer.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;
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

/// Images near the middle of the range, in [0.35, 0.65].
torch::Tensor robust_test_images(int64_t n, uint64_t seed, int64_t hw = 4) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand({n, 3, hw, hw}, gen, torch::kFloat32) * 0.3 + 0.35;
}

/// 8-bit images labelled with the model's own predictions, as an image source.
std::unique_ptr<ImageSource> labelled_source(Classifier& model, int64_t n, uint64_t seed, Dataset& keep,
                                             int64_t hw = 8) {
  auto gen = at::detail::createCPUGenerator(seed);
  keep.images = torch::randint(0, 256, {n, 3, hw, hw}, gen, torch::kInt64).to(torch::kUInt8);
  torch::NoGradGuard ng;
  keep.labels = model.forward(keep.images.to(torch::kFloat32).div(255)).argmax(1);
  for (int i = 0; i < 10; ++i) keep.classes.push_back("c" + std::to_string(i));
  keep.source = "test";
  return memory_source(keep);
}

RobustOptions quick_robust() {
  return RobustOptions().set_steps(20).set_queries(300).set_check_count(0).set_batch_size(7).set_progress(false);
}

}  // namespace

// For two classes the cross-entropy falls with the margin d.x + c (d = w_y - w_other), whose
// minimum over the ball is the clean margin minus eps ||d||_1 (l_inf) or eps ||d||_2 (l2).
TEST(Apgd, ReachesTheClosedFormWorstCaseOfABinaryLinearModel) {
  LinearClassifier model(2, 3, 4, 4, 5);
  auto x = robust_test_images(4, 11);
  auto y = model.forward(x).argmax(1);
  auto logits = torch::addmm(model.bias, x.to(torch::kFloat64).flatten(1), model.weight.t());
  for (Norm norm : {Norm::Linf, Norm::L2}) {
    {
      const std::string name = "apgd-ce";  // DLR needs three classes: below
      SCOPED_TRACE(to_string(norm));
      for (int64_t i = 0; i < x.size(0); ++i) {
        const int64_t yi = y[i].item<int64_t>();
        auto d = model.weight[yi] - model.weight[1 - yi];
        const double margin = (logits[i][yi] - logits[i][1 - yi]).item<double>();
        const double size = (norm == Norm::Linf ? d.abs().sum() : d.norm(2)).item<double>();
        // Half of the way to the boundary: not fooled, and the box does not bind.
        const double eps = 0.5 * margin / size;
        ASSERT_LT(eps, 0.3) << "test set-up";
        auto a = make_attack(name, AttackOptions().set_eps(eps).set_norm(norm).set_steps(10));
        auto r = a->run(model, x.narrow(0, i, 1), y.narrow(0, i, 1));
        EXPECT_FALSE(r.success[0].item<bool>());
        auto f = torch::addmm(model.bias, r.adversarial.to(torch::kFloat64).flatten(1), model.weight.t());
        const double reached = (f[0][yi] - f[0][1 - yi]).item<double>();
        EXPECT_NEAR(reached, margin - eps * size, 1e-4 * margin);
        auto delta = (r.adversarial[0] - x[i]).to(torch::kFloat64);
        const double used = norm == Norm::Linf ? delta.abs().max().item<double>() : delta.norm(2).item<double>();
        EXPECT_LE(used, eps * (1 + 1e-5));
        // Past the boundary (1.5x its distance) every sample is fooled.
        auto past = make_attack(name, AttackOptions().set_eps(3 * eps).set_norm(norm).set_steps(10));
        EXPECT_TRUE(past->run(model, x.narrow(0, i, 1), y.narrow(0, i, 1)).success[0].item<bool>());
      }
    }
  }
}

// Every APGD loss and Square: the same result run twice, and one batch or two.
TEST(Apgd, DeterministicAndIndependentOfTheBatch) {
  TinyCnn model(3);
  auto gen = at::detail::createCPUGenerator(8);
  auto x = torch::rand({6, 3, 8, 8}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  auto ids = torch::arange(40, 46, torch::kInt64);
  for (const auto& [name, norm] : std::vector<std::pair<std::string, Norm>>{
           {"apgd-ce", Norm::Linf}, {"apgd-ce", Norm::L2}, {"apgd-dlr", Norm::Linf}, {"apgd-t", Norm::Linf},
           {"apgd-t", Norm::L2}, {"fab-t", Norm::Linf}, {"fab-t", Norm::L2}, {"square", Norm::Linf}}) {
    SCOPED_TRACE(name + " " + to_string(norm));
    AttackOptions o = AttackOptions().set_eps(norm == Norm::Linf ? 2.0 / 255 : 0.05).set_steps(30).set_restarts(2);
    if (name == "square") o.set_restarts(1).set_steps(200);
    if (name != "square") o.set_norm(norm);
    auto attack = make_attack(name, o);
    auto a = attack->run(model, x, y, ids);
    auto b = attack->run(model, x, y, ids);
    EXPECT_TRUE(torch::equal(a.adversarial, b.adversarial));
    EXPECT_TRUE(torch::equal(a.iterations, b.iterations));
    auto h1 = attack->run(model, x.narrow(0, 0, 2), y.narrow(0, 0, 2), ids.narrow(0, 0, 2));
    auto h2 = attack->run(model, x.narrow(0, 2, 4), y.narrow(0, 2, 4), ids.narrow(0, 2, 4));
    EXPECT_TRUE(torch::allclose(a.adversarial, torch::cat({h1.adversarial, h2.adversarial}), 0, 1e-6));
    EXPECT_TRUE(torch::equal(a.success, torch::cat({h1.success, h2.success})));
    // Inside the ball and the box.
    auto d = (a.adversarial - x).flatten(1);
    const double used = norm == Norm::Linf ? d.abs().max().item<double>() : d.norm(2, 1).max().item<double>();
    EXPECT_LE(used, o.eps * (1 + 1e-5));
    EXPECT_GE(a.adversarial.min().item<float>(), 0.0f);
    EXPECT_LE(a.adversarial.max().item<float>(), 1.0f);
  }
}

// DLR and targeted DLR on a 10-class linear model: stronger budgets fool more, and the largest
// fools every sample; a sample that is fooled is misclassified by its adversarial.
TEST(Apgd, DlrLossesFoolALinearModelAndApgdTTriesTheTopTargets) {
  LinearClassifier model(10, 3, 4, 4, 9);
  auto x = robust_test_images(8, 12);
  auto y = model.forward(x).argmax(1);
  for (const std::string name : {"apgd-dlr", "apgd-t"}) {
    SCOPED_TRACE(name);
    int64_t before = -1;
    for (double eps : {0.002, 0.01, 0.05, 0.3}) {
      auto r = make_attack(name, AttackOptions().set_eps(eps).set_steps(20))->run(model, x, y);
      const int64_t fooled = r.success.sum().item<int64_t>();
      EXPECT_GE(fooled, before) << "eps " << eps;
      before = fooled;
      EXPECT_TRUE(torch::equal(r.success, model.forward(r.adversarial).argmax(1).ne(y)));
    }
    EXPECT_EQ(before, x.size(0));
  }
  // apgd-t runs once per target (9) for a sample it cannot fool: 9 x (steps + 1) passes.
  auto r = make_attack("apgd-t", AttackOptions().set_eps(1e-6).set_steps(5))->run(model, x, y);
  EXPECT_FALSE(r.success.any().item<bool>());
  EXPECT_EQ(r.backward_passes[0].item<int64_t>(), 9 * 6);
  EXPECT_EQ(r.iterations[0].item<int64_t>(), 9 * 5);
}

TEST(Apgd, OptionsAreCheckedAndNamed) {
  EXPECT_TRUE(Contains(error_message([] { make_attack("apgd-ce", AttackOptions().set_restarts(0)); }), "--restarts"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("apgd-t", AttackOptions().set_targeted(TargetMode::Random)); }),
                       "--targeted"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("square", AttackOptions().set_norm(Norm::L2)); }), "--norm"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("pgd", AttackOptions().set_norm(Norm::L2)); }), "--norm"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("ifgsm", AttackOptions().set_restarts(3)); }), "--restarts"));
  // An l2 radius may exceed 1; an l_inf budget may not.
  EXPECT_NO_THROW(make_attack("apgd-ce", AttackOptions().set_norm(Norm::L2).set_eps(2.5)));
  EXPECT_TRUE(Contains(error_message([] { make_attack("apgd-ce", AttackOptions().set_eps(2.5)); }), "--eps"));
  auto config = make_attack("apgd-t", AttackOptions().set_norm(Norm::L2).set_eps(0.5))->config();
  EXPECT_EQ(config["norm"], "l2");
  EXPECT_EQ(config["loss"], "dlr-targeted");
  EXPECT_EQ(config["target_classes"], 9);
  EXPECT_EQ(AttackOptions::from_json(config).norm, Norm::L2);
  EXPECT_EQ(attack_info("apgd-ce").family, AttackFamily::Adaptive);
  EXPECT_EQ(attack_info("square").family, AttackFamily::ScoreBased);
  EXPECT_EQ(attack_info("apgd-ce").default_steps, 100);
  EXPECT_EQ(attack_info("square").default_steps, 5000);
}

TEST(Robust, EnsembleIsNeverAboveAnyOfItsMembers) {
  TinyCnn model(4);
  Dataset keep;
  auto source = labelled_source(model, 30, 21, keep);
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
  auto source = labelled_source(model, 40, 5, keep);
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

TEST(Robust, ChecksStaySilentOnTheShippedResNet20) {
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

TEST(Robust, OptionsAreCheckedAndNamed) {
  auto bad = [](RobustOptions o) { return error_message([&] { o.validate(); }); };
  EXPECT_TRUE(Contains(bad(RobustOptions().set_eps(0)), "--eps"));
  EXPECT_TRUE(Contains(bad(RobustOptions().set_steps(0)), "--steps"));
  EXPECT_TRUE(Contains(bad(RobustOptions().set_queries(0)), "--queries"));
  RobustOptions unbounded;
  unbounded.attacks = {"apgd-ce", "deepfool"};
  EXPECT_TRUE(Contains(bad(unbounded), "deepfool is unbounded"));
  RobustOptions l2_square = RobustOptions().set_norm(Norm::L2).set_eps(0.5);
  EXPECT_EQ(l2_square.sequence(), (std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t"}));
  l2_square.attacks = {"square"};
  EXPECT_TRUE(Contains(bad(l2_square), "--norm"));
}

// A transfer cell counts, of the images the target classifies correctly, those the attack fooled on
// the source; the diagonal is the white-box ASR over the correctly classified images.
TEST(Transfer, CellsCountWhatTheyDefine) {
  TinyCnn source(4), target(6);
  Dataset data;
  auto unused = labelled_source(source, 40, 3, data, 16);  // SSIM needs 11 x 11
  auto x = data.images.to(torch::kFloat32).div(255);
  // Labels the target gets right on half of the images.
  data.labels = torch::where(torch::arange(40).remainder(2).eq(0), target.forward(x).argmax(1), data.labels);
  RunOptions ro;
  ro.progress = false;
  ro.keep_adversarial = true;
  ro.batch_size = 16;
  auto r = run_attack(source, data, *make_attack("ifgsm", AttackOptions().set_eps(4.0 / 255)), ro);
  TransferCell c = transfer_cell(r, x, target, "a", "b", 16);
  auto correct = target.forward(x).argmax(1).eq(data.labels);
  auto counted = correct.logical_and(r.success.to(torch::kBool));
  EXPECT_EQ(c.counted, counted.sum().item<int64_t>());
  auto fools = target.forward(r.adversarial).argmax(1).ne(data.labels);
  EXPECT_EQ(c.fooled, counted.logical_and(fools).sum().item<int64_t>());
  EXPECT_GT(c.counted, 0);
  EXPECT_LE(c.fooled, c.counted);
  TransferCell self = transfer_cell(r, x, source, "a", "a", 16);
  auto source_correct = source.forward(x).argmax(1).eq(data.labels);
  EXPECT_EQ(self.counted, source_correct.sum().item<int64_t>());
  EXPECT_EQ(self.fooled, source_correct.logical_and(r.success.to(torch::kBool)).sum().item<int64_t>());
  auto table = transfer_tables({c, self});
  EXPECT_TRUE(Contains(table, "| made on \\ fools | b | a |")) << table;
  EXPECT_TRUE(Contains(c.to_json().dump(), "\"asr_8bit\""));
}

// With a work folder each batch's outcome is kept; a second call (a resumed run) reads them back
// instead of attacking again, and gives the same result.
TEST(Robust, ResumeReadsTheFinishedBatchesBack) {
  TinyCnn model(4);
  Dataset keep;
  auto source = labelled_source(model, 20, 21, keep);
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
