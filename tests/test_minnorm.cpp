// The minimum-norm attacks (deepfool, cw, ddn, fmn): the closed-form minimal perturbation of a
// linear model, 100% success on the shipped ResNet-20, determinism, batch independence, options.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;
using sdsgsm_test::TinyCnn;

namespace {

/// Images in [0.4, 0.6], so that the minimal perturbations below stay inside the [0,1] box.
torch::Tensor middle_images(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand({n, 3, 4, 4}, gen, torch::kFloat32) * 0.2 + 0.4;
}

struct MinNormCase {
  std::string attack;
  Norm norm;
  double factor;  ///< how far above the minimum the attack may end
};

/// The smallest perturbation that changes a linear model's class from y, per sample, and checks
/// that it lies in the box: min_j (f_y - f_j) / ||w_y - w_j||_q with q = 2 (l2) or 1 (l_inf).
torch::Tensor minimal_norm(const LinearClassifier& m, const torch::Tensor& x, const torch::Tensor& y, Norm norm) {
  auto f = torch::addmm(m.bias, x.to(torch::kFloat64).flatten(1), m.weight.t());
  const int64_t n = x.size(0), k = m.weight.size(0);
  auto best = torch::full({n}, 1e30, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t yi = y[i].item<int64_t>();
    for (int64_t j = 0; j < k; ++j) {
      if (j == yi) continue;
      auto w = m.weight[j] - m.weight[yi];
      double d = (f[i][yi] - f[i][j]).item<double>() / (norm == Norm::L2 ? w.norm(2) : w.abs().sum()).item<double>();
      if (d < best[i].item<double>()) {
        best[i] = d;
        auto step = norm == Norm::L2 ? w / w.norm(2) * d : w.sign() * d;
        auto moved = x[i].to(torch::kFloat64).flatten() + step;
        EXPECT_GT(moved.min().item<double>(), 0.0) << "test set-up: the minimum leaves the box";
        EXPECT_LT(moved.max().item<double>(), 1.0) << "test set-up: the minimum leaves the box";
      }
    }
  }
  return best;
}

torch::Tensor norms(const torch::Tensor& adv, const torch::Tensor& x, Norm norm) {
  auto d = (adv - x).to(torch::kFloat64).flatten(1);
  return norm == Norm::L2 ? d.norm(2, 1) : d.abs().amax(1);
}

void expect_near_minimum(const std::string& attack, Norm norm, int64_t classes, double factor, int64_t steps,
                         uint64_t seed) {
  SCOPED_TRACE(attack + " " + to_string(norm) + " on " + std::to_string(classes) + " classes");
  LinearClassifier model(classes, 3, 4, 4, seed);
  auto x = middle_images(6, seed + 10);
  auto y = model.forward(x).argmax(1);  // every sample classified correctly
  auto minimum = minimal_norm(model, x, y, norm);
  // Off the 8-bit grid (levels 0): the closed form is the minimum of the continuous problem.
  auto r = make_attack(attack, AttackOptions().set_steps(steps), SdsgsmOptions(),
                       MinNormOptions().set_norm(norm).set_binary_steps(6).set_levels(0))
               ->run(model, x, y);
  EXPECT_TRUE(r.success.all().item<bool>()) << r.success;
  auto got = norms(r.adversarial, x, norm);
  auto ratio = got / minimum;
  EXPECT_GE(ratio.min().item<double>(), 1 - 1e-4) << ratio;  // never below the minimum
  EXPECT_LE(ratio.max().item<double>(), factor) << ratio;
  EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
  EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
  EXPECT_TRUE(r.iterations.gt(0).all().item<bool>());
}

const std::vector<std::string>& minnorm_attacks() {
  static const std::vector<std::string> names = {"deepfool", "cw", "ddn", "fmn"};
  return names;
}

}  // namespace

// Two classes: the minimal perturbation is the distance to the one boundary, and every attack's
// search direction (the gradient of its loss) is the boundary's normal.
TEST(MinNorm, ReachesTheClosedFormMinimumOfABinaryLinearModel) {
  // DeepFool lands on the boundary times 1 + overshoot (and 1e-4 in the logits); the others approach
  // it from both sides.
  for (const MinNormCase& c : std::vector<MinNormCase>{{"deepfool", Norm::L2, 1.025},
                                         {"deepfool", Norm::Linf, 1.025},
                                         {"cw", Norm::L2, 1.05},
                                         {"ddn", Norm::L2, 1.05},
                                         {"fmn", Norm::L2, 1.05},
                                         {"fmn", Norm::Linf, 1.05}}) {
    expect_near_minimum(c.attack, c.norm, 2, c.factor, c.attack == "deepfool" ? 10 : 100, 5);
  }
}

// Several classes: DeepFool, which looks at every class, still finds the nearest boundary; no
// attack goes below the minimum.
TEST(MinNorm, DeepFoolFindsTheNearestBoundaryOfAMulticlassLinearModel) {
  expect_near_minimum("deepfool", Norm::L2, 6, 1.025, 10, 7);
  expect_near_minimum("deepfool", Norm::Linf, 6, 1.025, 10, 7);
  for (const auto& name : {"cw", "ddn", "fmn"}) expect_near_minimum(name, Norm::L2, 6, 3.0, 100, 7);
  expect_near_minimum("fmn", Norm::Linf, 6, 3.0, 100, 7);
}

TEST(MinNorm, LeavesMisclassifiedSamplesUnchanged) {
  LinearClassifier model(4, 3, 4, 4, 2);
  auto x = middle_images(6, 3);
  auto pred = model.forward(x).argmax(1);
  auto y = pred.clone();
  y.narrow(0, 0, 3).add_(1).remainder_(4);  // the first three are misclassified
  for (const auto& name : minnorm_attacks()) {
    SCOPED_TRACE(name);
    auto r = make_attack(name, AttackOptions())->run(model, x, y);
    EXPECT_TRUE(torch::equal(r.adversarial.narrow(0, 0, 3), x.narrow(0, 0, 3)));
    EXPECT_EQ(r.iterations.narrow(0, 0, 3).sum().item<int64_t>(), 0);
    EXPECT_TRUE(r.iterations.narrow(0, 3, 3).gt(0).all().item<bool>());
    EXPECT_TRUE(r.success.all().item<bool>());
    EXPECT_TRUE(torch::equal(r.clean_pred, pred));
  }
}

TEST(MinNorm, TargetedAttacksReachTheTarget) {
  LinearClassifier model(5, 3, 4, 4, 4);
  auto x = middle_images(5, 6);
  auto y = model.forward(x).argmax(1);
  for (const auto& name : minnorm_attacks()) {
    SCOPED_TRACE(name);
    // C&W's Adam moves each pixel by at most about its rate per step: 50 steps at the default 0.01
    // fall short of this toy's least likely class, so it gets 0.1.
    MinNormOptions mn;
    if (std::string(name) == "cw") mn.set_learning_rate(0.1);
    auto r = make_attack(name, AttackOptions().set_steps(50).set_targeted(TargetMode::LeastLikely), SdsgsmOptions(), mn)
                 ->run(model, x, y);
    EXPECT_TRUE(torch::equal(r.target, model.forward(x).argmin(1)));
    EXPECT_TRUE(r.success.all().item<bool>()) << r.success;
    EXPECT_TRUE(torch::equal(r.adv_pred, r.target));
  }
}

TEST(MinNorm, DeterministicAndIndependentOfTheBatch) {
  TinyCnn model(3);
  auto gen = at::detail::createCPUGenerator(8);
  auto x = torch::rand({6, 3, 8, 8}, gen, torch::kFloat32);
  auto y = model.forward(x).argmax(1);
  auto ids = torch::arange(40, 46, torch::kInt64);
  for (const auto& [name, norm] : std::vector<std::pair<std::string, Norm>>{
           {"deepfool", Norm::L2}, {"deepfool", Norm::Linf}, {"cw", Norm::L2}, {"ddn", Norm::L2}, {"fmn", Norm::L2},
           {"fmn", Norm::Linf}}) {
    SCOPED_TRACE(name + " " + to_string(norm));
    auto attack = make_attack(name, AttackOptions(), SdsgsmOptions(), MinNormOptions().set_norm(norm));
    auto a = attack->run(model, x, y, ids);
    auto b = attack->run(model, x, y, ids);
    EXPECT_TRUE(torch::equal(a.adversarial, b.adversarial));
    EXPECT_TRUE(torch::equal(a.iterations, b.iterations));
    EXPECT_TRUE(a.success.any().item<bool>());
    auto h1 = attack->run(model, x.narrow(0, 0, 2), y.narrow(0, 0, 2), ids.narrow(0, 0, 2));
    auto h2 = attack->run(model, x.narrow(0, 2, 4), y.narrow(0, 2, 4), ids.narrow(0, 2, 4));
    // Equal up to float rounding: ATen may split a reduction (DeepFool's norms over the candidate
    // gradients) differently for another number of rows.
    EXPECT_TRUE(torch::allclose(a.adversarial, torch::cat({h1.adversarial, h2.adversarial}), 0, 1e-6));
    EXPECT_TRUE(torch::equal(a.iterations, torch::cat({h1.iterations, h2.iterations})));
  }
}

// Unbounded: every image of the shipped model is fooled, at the 100 iterations reproduce gives them
// (C&W's 10 default Adam steps per binary-search step leave its l2 above 1).
SLOW_TEST(MinNorm, FoolsEveryImageOfTheShippedResNet20) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (find_zoo_weights("resnet20").empty()) GTEST_SKIP() << "no shipped resnet20 weights";
  auto model = load_classifier("resnet20");
  Dataset data = open_dataset(sdsgsm_test::real_cifar_dir(), Split::Test, 0, 24);
  auto x = data.images.to(torch::kFloat32).div(255);
  for (const auto& [name, norm] : std::vector<std::pair<std::string, Norm>>{
           {"deepfool", Norm::L2}, {"cw", Norm::L2}, {"ddn", Norm::L2}, {"fmn", Norm::L2}, {"fmn", Norm::Linf}}) {
    SCOPED_TRACE(name + " " + to_string(norm));
    auto r = make_attack(name, AttackOptions().set_steps(100), SdsgsmOptions(), MinNormOptions().set_norm(norm))
                 ->run(*model, x, data.labels);
    EXPECT_TRUE(r.success.all().item<bool>()) << r.success;
    EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
    EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
    // Far below the l_inf budget of the bounded attacks' default (8/255 everywhere: l2 1.74).
    EXPECT_LT(norms(r.adversarial, x, Norm::L2).mean().item<double>(), 1.0);
  }
}

TEST(MinNorm, ConfigSaysUnboundedAndTheNorm) {
  auto fmn = make_attack("fmn", AttackOptions(), SdsgsmOptions(), MinNormOptions().set_norm(Norm::Linf))->config();
  EXPECT_EQ(fmn["attack"], "fmn");
  EXPECT_EQ(fmn["bounded"], false);
  EXPECT_EQ(fmn["norm"], "linf");
  EXPECT_FALSE(fmn.contains("eps"));
  auto cw = make_attack("cw", AttackOptions())->config();
  EXPECT_EQ(cw["norm"], "l2");
  EXPECT_EQ(cw["binary_steps"], 5);
  EXPECT_EQ(cw["learning_rate"], 0.01);
  EXPECT_EQ(make_attack("ifgsm", AttackOptions())->config().count("bounded"), 0u);  // unchanged
}

TEST(MinNorm, InvalidOptionsNameTheFlag) {
  auto bad = [](const std::string& name, const MinNormOptions& mn) {
    return error_message([&] { make_attack(name, AttackOptions(), SdsgsmOptions(), mn); });
  };
  EXPECT_TRUE(Contains(bad("cw", MinNormOptions().set_binary_steps(0)), "--binary-steps"));
  EXPECT_TRUE(Contains(bad("cw", MinNormOptions().set_initial_const(0)), "--initial-const"));
  EXPECT_TRUE(Contains(bad("cw", MinNormOptions().set_confidence(-1)), "--confidence"));
  EXPECT_TRUE(Contains(bad("ddn", MinNormOptions().set_learning_rate(0.0)), "--learning-rate"));
  EXPECT_TRUE(Contains(bad("ddn", MinNormOptions().set_norm_gamma(1)), "--norm-gamma"));
  EXPECT_TRUE(Contains(bad("ddn", MinNormOptions().set_initial_norm(-1)), "--initial-norm"));
  EXPECT_TRUE(Contains(bad("deepfool", MinNormOptions().set_candidates(1)), "--candidates"));
  EXPECT_TRUE(Contains(bad("deepfool", MinNormOptions().set_overshoot(-0.1)), "--overshoot"));
  EXPECT_TRUE(Contains(bad("cw", MinNormOptions().set_norm(Norm::Linf)), "--norm inf"));
  EXPECT_TRUE(Contains(bad("ddn", MinNormOptions().set_norm(Norm::Linf)), "--norm inf"));
  EXPECT_TRUE(Contains(error_message([] { parse_norm("3"); }), "--norm must be 1, 2 or inf"));
  EXPECT_TRUE(Contains(bad("cw", MinNormOptions().set_norm(Norm::L1)), "--norm 1"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("fmn", AttackOptions().set_steps(0)); }), "--steps"));
}

SLOW_TEST(MinNorm, CommandLineRunsAndRefusesABadOptionInOneLine) {
  sdsgsm_test::TempDir dir;
  std::vector<int> labels;
  for (int i = 0; i < 4; ++i) labels.push_back(i);
  sdsgsm_test::write_bytes(dir / "b.bin", sdsgsm_test::make_cifar_bytes(labels));
  auto model = dir / "net.pt";
  torch::manual_seed(0);
  save_network(make_network("resnet20"), "resnet20", 10, model);
  const std::string common = std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q attack --model " + model.string() +
                             " --data " + (dir / "b.bin").string() + " --count 4 --sheet 0 ";
  auto ok = sdsgsm_test::run_shell(common + "--attack fmn --norm inf --steps 3 --out " + (dir / "run").string(),
                                   dir.path());
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto metrics = nlohmann::json::parse(sdsgsm_test::read_bytes(dir / "run" / "metrics.json"));
  EXPECT_EQ(metrics.dump().find("\"bounded\":false") != std::string::npos, true) << metrics.dump();
  for (const auto& [flags, part] : std::vector<std::pair<std::string, std::string>>{
           {"--attack cw --binary-steps 0", "--binary-steps"},
           {"--attack fmn --norm 3", "--norm"},
           {"--attack ddn --norm inf", "--norm inf"},
           {"--attack ddn --learning-rate x", "--learning-rate"}}) {
    auto r = sdsgsm_test::run_shell(common + flags + " --out " + (dir / "bad").string(), dir.path());
    EXPECT_NE(r.exit_code, 0) << flags;
    auto lines = sdsgsm_test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_TRUE(Contains(lines[0], "sdsgsm: error: "));
    EXPECT_TRUE(Contains(lines[0], part));
    EXPECT_FALSE(fs::exists(dir / "bad"));
  }
}
