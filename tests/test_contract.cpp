// The attack contract, over every registered attack: a new registry row is tested by being
// registered. Each attack runs a few steps on a tiny fixed CNN, so the suite takes seconds.
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::TinyCnn;

namespace {

constexpr double kEps = 8.0 / 255;

torch::Tensor images(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand({n, 3, 8, 8}, gen, torch::kFloat32);
}


/// The attack's settings for the contract: a few steps (Square: queries), a seed, its family's
/// options at their defaults.
AttackSettings settings_of(const std::string& name, TargetMode mode = TargetMode::None) {
  AttackSettings s;
  s.attack.set_eps(kEps).set_seed(7).set_steps(std::min<int64_t>(attack_info(name).default_steps, 4)).set_targeted(mode);
  s.mn.set_binary_steps(2);
  return s;
}

/// The attacks whose pass counts of a sample still depend on its batch-mates (SD-IFGSM's and
/// SGSM's early stop, DeepFool's per-class gradients); their adversarials do not.
bool passes_depend_on_the_batch(const std::string& name) { return name == kSdIfgsm || name == kSgsm || name == kDeepfool; }

class Contract : public ::testing::TestWithParam<std::string> {
 protected:
  const AttackInfo& info() const { return attack_info(GetParam()); }
  std::unique_ptr<Attack> make(TargetMode mode = TargetMode::None) const {
    return make_attack(GetParam(), settings_of(GetParam(), mode));
  }
  /// The model's own predictions: every image starts classified "correctly", so every attack
  /// has work to do.
  torch::Tensor labels(const torch::Tensor& x) {
    torch::NoGradGuard ng;
    return model_.forward(x).argmax(1);
  }
  TinyCnn model_;
};

TEST_P(Contract, OutputLiesInTheUnitRangeAndInsideTheBudgetWhenBounded) {
  auto x = images(6, 1);
  auto y = labels(x);
  auto r = make()->run(model_, x, y);
  ASSERT_EQ(r.adversarial.sizes(), x.sizes());
  EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
  EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
  if (info().bounded) {
    EXPECT_LE((r.adversarial - x).abs().max().item<float>(), kEps + 1e-6);
  }
  EXPECT_GT((r.adversarial - x).abs().max().item<float>(), 0.0f) << "the attack did not move";
}

TEST_P(Contract, LeavesTheInputUntouched) {
  auto x = images(4, 2);
  auto y = labels(x);
  auto x0 = x.clone(), y0 = y.clone();
  make()->run(model_, x, y);
  EXPECT_TRUE(torch::equal(x, x0));
  EXPECT_TRUE(torch::equal(y, y0));
}

TEST_P(Contract, ABatchEqualsEachSampleAlone) {
  auto x = images(4, 3);
  auto y = labels(x);
  auto ids = torch::arange(200, 204, torch::kInt64);
  std::vector<TargetMode> modes = {TargetMode::None};
  if (info().targeted) modes.push_back(TargetMode::Random);
  for (auto mode : modes) {
    auto attack = make(mode);
    auto batch = attack->run(model_, x, y, ids);
    for (int64_t i = 0; i < x.size(0); ++i) {
      auto one = attack->run(model_, x.narrow(0, i, 1), y.narrow(0, i, 1), ids.narrow(0, i, 1));
      const std::string at = fmt::format("sample {} ({})", i, to_string(mode));
      EXPECT_TRUE(torch::allclose(one.adversarial[0], batch.adversarial[i], 0, 1e-5)) << at;
      EXPECT_EQ(one.target[0].item<int64_t>(), batch.target[i].item<int64_t>()) << at;
      EXPECT_EQ(one.success[0].item<bool>(), batch.success[i].item<bool>()) << at;
      EXPECT_EQ(one.iterations[0].item<int64_t>(), batch.iterations[i].item<int64_t>()) << at;
      // Passes are compared untargeted: a sample whose random target is its clean prediction
      // needs no step, yet the engine counts the first backward pass of its batch for it.
      if (mode == TargetMode::None && !passes_depend_on_the_batch(GetParam())) {
        EXPECT_EQ(one.forward_passes[0].item<int64_t>(), batch.forward_passes[i].item<int64_t>()) << at;
        EXPECT_EQ(one.backward_passes[0].item<int64_t>(), batch.backward_passes[i].item<int64_t>()) << at;
      }
    }
  }
}

TEST_P(Contract, CountsItsPasses) {
  auto x = images(5, 4);
  auto y = labels(x);
  auto r = make()->run(model_, x, y);
  ASSERT_EQ(r.forward_passes.size(0), 5);
  ASSERT_EQ(r.backward_passes.size(0), 5);
  // Every sample has its clean pass, and a forward pass at least per step it took.
  EXPECT_TRUE(r.forward_passes.ge(1).all().item<bool>()) << r.forward_passes;
  EXPECT_TRUE(r.forward_passes.ge(r.iterations).all().item<bool>()) << r.forward_passes << r.iterations;
  if (info().family == AttackFamily::ScoreBased) {
    EXPECT_TRUE(r.backward_passes.eq(0).all().item<bool>()) << "a score-based attack takes no gradient";
  } else {
    EXPECT_GT(r.backward_passes.sum().item<int64_t>(), 0) << "a gradient attack counted no backward pass";
  }
}

TEST_P(Contract, ConfigRoundTrips) {
  AttackSettings s = settings_of(GetParam(), info().targeted ? TargetMode::Random : TargetMode::None);
  s.attack.set_eps(6.0 / 255).set_seed(11);
  if (info().family == AttackFamily::Adaptive) s.attack.set_restarts(2);
  s.sd.set_rho(0.2).set_beta(2.0);
  s.mn.set_overshoot(0.05);
  const nlohmann::json config = make_attack(GetParam(), s)->config();
  EXPECT_EQ(config.value("attack", std::string()), GetParam());
  // The attack rebuilt from its config reports the same values (a default it was given
  // explicitly, such as SD-SGSM's alpha, no longer names the rule that derived it), and is a
  // fixed point from then on.
  auto rebuild = [](const nlohmann::json& c) {
    AttackSettings s{AttackOptions::from_json(c), SdsgsmOptions::from_json(c), MinNormOptions::from_json(c)};
    return make_attack(c.at("attack").get<std::string>(), s)->config();
  };
  const nlohmann::json back = rebuild(config);
  for (const auto& [key, value] : back.items()) EXPECT_EQ(value, config.value(key, nlohmann::json())) << key;
  EXPECT_EQ(rebuild(back), back);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string n = p.param;
  for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Registry, Contract, ::testing::ValuesIn(attack_names()), test_name);

}  // namespace
