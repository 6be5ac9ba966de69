// SD-SGSM: domain identification, allocation maps, the smoothed sign, and the variants' invariants.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/metrics.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TinyCnn;

namespace {

/// Decides from one 8 x 8 patch only: logit 0 = sum of the patch's pixels, the others 0.
class PatchClassifier : public Classifier {
 public:
  static constexpr int64_t kRow = 8, kCol = 20, kSize = 8;
  torch::Tensor forward(const torch::Tensor& x) override {
    auto patch = x.narrow(2, kRow, kSize).narrow(3, kCol, kSize).flatten(1).sum(1, true) * 0.05;
    return torch::cat({patch, torch::zeros({x.size(0), 9})}, 1);
  }
  std::string name() const override { return "patch"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return 0; }
};

/// Ignores its input: every image gets the same logits.
class FlatClassifier : public Classifier {
 public:
  torch::Tensor forward(const torch::Tensor& x) override {
    return (torch::arange(10, torch::kFloat32) * 0.1).expand({x.size(0), 10}) + 0 * x.sum({1, 2, 3}, true).view({-1, 1});
  }
  std::string name() const override { return "flat"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return 0; }
};

torch::Tensor images(int64_t n, uint64_t seed, int64_t side = 32) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand({n, 3, side, side}, gen) * 0.8 + 0.1;
}

/// The 4 x 4 grid (64 windows on 32 x 32) these tests are written for: fine enough to find an
/// 8 x 8 patch. The shipped default is 16 x 16 (4 windows), chosen by the tuning sweep.
DdiOptions grid4() { return DdiOptions().set_window(4).set_stride(4); }
SdsgsmOptions sd4() { return SdsgsmOptions().set_ddi(grid4()); }

const std::vector<std::string>& variants() {
  static const std::vector<std::string> v = {"sdsgsm", "sd-ifgsm", "sgsm"};
  return v;
}

}  // namespace

TEST(Ddi, WindowsCoverEveryPixel) {
  EXPECT_EQ(ddi_windows(32, 32, DdiOptions().set_window(4).set_stride(4)).size(0), 64);
  EXPECT_EQ(ddi_windows(32, 32, DdiOptions().set_window(4).set_stride(2)).size(0), 225);
  auto clipped = ddi_windows(32, 32, DdiOptions().set_window(5).set_stride(5));
  EXPECT_EQ(clipped.size(0), 49);  // 6 full windows per side and one clipped at the border
  EXPECT_TRUE(clipped.sum(0).ge(1).all().item<bool>());
  EXPECT_TRUE(ddi_windows(32, 32, DdiOptions()).sum(0).eq(1).all().item<bool>());
}

TEST(Ddi, DefaultWindowsAreA2x2GridAtAnySize) {
  // At 32 x 32 the default is exactly the 16 x 16 windows with stride 16 it replaced.
  EXPECT_TRUE(torch::equal(ddi_windows(32, 32, DdiOptions()), ddi_windows(32, 32, DdiOptions().set_window(16).set_stride(16))));
  for (auto [h, w] : {std::make_pair(224, 224), std::make_pair(20, 27), std::make_pair(33, 33)}) {
    auto m = ddi_windows(h, w, DdiOptions());
    ASSERT_EQ(m.size(0), 4) << h << "x" << w;
    EXPECT_TRUE(m.sum(0).eq(1).all().item<bool>()) << h << "x" << w;  // a partition of the image
    EXPECT_EQ(m[0].sum().item<float>(), static_cast<float>(((h + 1) / 2) * ((w + 1) / 2)));
  }
  // An explicit stride with the relative window: half-image windows, overlapping.
  EXPECT_EQ(ddi_windows(224, 224, DdiOptions().set_stride(56)).size(0), 9);
}

/// Records the largest batch it is given; logits from a fixed random linear map of the pixels.
class CountingClassifier : public Classifier {
 public:
  explicit CountingClassifier(int64_t side)
      : weight_(torch::rand({3 * side * side, 10}, at::detail::createCPUGenerator(4)) - 0.5) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    largest = std::max(largest, x.size(0));
    return torch::mm(x.flatten(1), weight_);
  }
  std::string name() const override { return "counting"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return 0; }
  int64_t largest = 0;

 private:
  torch::Tensor weight_;
};

TEST(Ddi, ForwardCallsRespectTheBatchLimitWhenAnImageHasMoreWindows) {
  CountingClassifier model(32);
  auto x = images(3, 6);
  auto y = torch::tensor({0, 1, 2}, torch::kInt64);
  auto fine = DdiOptions().set_window(4).set_stride(2);  // 225 windows an image
  auto all_at_once = sensitivity_map(model, x, y, DdiOptions(fine).set_max_batch(1000));
  EXPECT_EQ(model.largest, 675);
  model.largest = 0;
  auto limited = sensitivity_map(model, x, y, DdiOptions(fine).set_max_batch(64));
  EXPECT_EQ(model.largest, 64);
  EXPECT_TRUE(torch::allclose(limited, all_at_once, 1e-5, 1e-6));
}

TEST(Ddi, MeanFillIsEachImagesOwnChannelMean) {
  // A model whose logit 0 is the image's mean value: occluding with the image's own channel means
  // keeps every channel's mean, so no window changes the score, and the map is flat (all 0).
  class MeanClassifier : public Classifier {
   public:
    torch::Tensor forward(const torch::Tensor& x) override {
      return torch::cat({x.mean({1, 2, 3}).unsqueeze(1) * 10, torch::zeros({x.size(0), 9})}, 1);
    }
    std::string name() const override { return "mean"; }
    std::string kind() const override { return "test"; }
    int64_t parameter_count() const override { return 0; }
  } model;
  auto x = images(2, 8);
  x[1].mul_(0.1).add_(0.85);  // a bright image: CIFAR-10's means (about 0.47) would cut its score by 0.3
  auto y = torch::zeros({2}, torch::kInt64);
  auto s = sensitivity_map(model, x, y, DdiOptions().set_window(8).set_stride(8).set_fill("mean").set_score("margin"));
  // The fill has the image's means over the whole image, not over the window: a window's drop is
  // its own deviation from them (about 0.01 here).
  EXPECT_LT(s.abs().max().item<float>(), 0.05f);
  auto zero = sensitivity_map(model, x, y, DdiOptions().set_window(8).set_stride(8).set_fill("zero").set_score("margin"));
  EXPECT_GT(zero.amax({1, 2, 3}).min().item<float>(), 0.05f);
}

TEST(Ddi, DomainIsThePatchTheDecisionDependsOn) {
  PatchClassifier model;
  auto x = images(3, 1);
  auto y = torch::zeros({3}, torch::kInt64);
  auto s = sensitivity_map(model, x, y, grid4());
  auto expected = torch::zeros({3, 1, 32, 32}, torch::kBool);
  expected.narrow(2, PatchClassifier::kRow, 8).narrow(3, PatchClassifier::kCol, 8).fill_(true);
  EXPECT_TRUE(s.masked_select(expected.logical_not()).eq(0).all().item<bool>());
  EXPECT_TRUE(s.masked_select(expected).gt(0).all().item<bool>());
  auto domain = domain_mask(normalize_sensitivity(s), 64.0 / 1024);
  EXPECT_TRUE(torch::equal(domain, expected));
  // The hard map: 1 on the patch, lambda elsewhere.
  auto m = allocation_map(model, x, y, sd4().set_rho(64.0 / 1024).set_lambda(0.3));
  EXPECT_TRUE(m.masked_select(expected).eq(1.0f).all().item<bool>());
  EXPECT_TRUE(m.masked_select(expected.logical_not()).eq(0.3f).all().item<bool>());
  // Every score finds the same domain; so does every fill on an image whose patch is bright
  // (where any fill lowers the patch's pixels).
  for (const char* score : {"prob", "margin", "loss"}) {
    auto sm = sensitivity_map(model, x, y, grid4().set_score(score));
    EXPECT_TRUE(torch::equal(domain_mask(normalize_sensitivity(sm), 64.0 / 1024), expected)) << score;
  }
  auto bright = torch::where(expected.expand_as(x), torch::full_like(x, 0.9), torch::full_like(x, 0.1));
  for (const char* fill : {"zero", "mean", "blur"}) {
    auto sm = sensitivity_map(model, bright, y, grid4().set_fill(fill));
    EXPECT_TRUE(torch::equal(domain_mask(normalize_sensitivity(sm), 64.0 / 1024), expected)) << fill;
  }
  // Several images per forward call or one at a time: the same map.
  auto small = sensitivity_map(model, x, y, grid4().set_max_batch(1));
  EXPECT_TRUE(torch::allclose(small, s, 0, 1e-6));
  // Given the clean logits (as the engine passes them), the same map without the unoccluded pass.
  EXPECT_TRUE(torch::equal(sensitivity_map(model, x, y, grid4(), model.forward(x)), s));
}

TEST(Ddi, FlatModelGivesUniformMap) {
  FlatClassifier model;
  auto x = images(2, 2);
  auto y = torch::tensor({1, 4}, torch::kInt64);
  auto s = sensitivity_map(model, x, y, grid4());
  EXPECT_TRUE(flat_maps(s).all().item<bool>());
  EXPECT_TRUE(normalize_sensitivity(s).eq(1.0f).all().item<bool>());
  auto m = allocation_map(model, x, y, sd4().set_lambda(0.2));
  EXPECT_TRUE(m.eq(1.0f).all().item<bool>()) << "a flat map must degrade to a uniform attack, never a zero one";
  auto soft = allocation_map(model, x, y, sd4().set_lambda(0.2).set_map("soft"));
  EXPECT_TRUE(soft.eq(1.0f).all().item<bool>());
}

TEST(Ddi, DomainSizeAndTiesAreDeterministic) {
  auto s = torch::zeros({1, 1, 4, 4});
  s[0][0][3][3] = 1.0;
  auto d = domain_mask(normalize_sensitivity(s), 0.25);  // 4 pixels: the peak, then ties by index
  EXPECT_EQ(d.sum().item<int64_t>(), 4);
  EXPECT_TRUE(d[0][0][3][3].item<bool>());
  EXPECT_TRUE(d[0][0][0][0].item<bool>() && d[0][0][0][1].item<bool>() && d[0][0][0][2].item<bool>());
  EXPECT_EQ(domain_mask(normalize_sensitivity(s), 1.0).sum().item<int64_t>(), 16);
}

TEST(Sdsgsm, BackgroundNeverMovesMoreThanLambdaEps) {
  TinyCnn model;
  auto x = images(4, 3, 16);
  auto y = model.forward(x).argmax(1);
  const double eps = 8.0 / 255, lambda = 0.3;
  for (const std::string v : {"sdsgsm", "sd-ifgsm"}) {
    for (const char* map : {"hard", "soft"}) {
      SdsgsmOptions sd = sd4().set_lambda(lambda).set_map(map).set_rho(0.25);
      auto m = allocation_map(model, x, y, sd);
      auto r = make_attack(v, AttackOptions().set_eps(eps).set_steps(10), sd)->run(model, x, y);
      auto delta = (r.adversarial - x).abs();
      EXPECT_TRUE(delta.le(m * eps + 1e-6).all().item<bool>()) << v << " " << map;
      if (std::string(map) == "hard") {
        auto background = m.lt(1.0f).expand_as(delta);
        EXPECT_LE(delta.masked_select(background).max().item<float>(), lambda * eps + 1e-6) << v;
        EXPECT_GT(delta.masked_select(background.logical_not()).max().item<float>(), lambda * eps + 1e-4) << v;
      }
    }
  }
}

TEST(Sdsgsm, SgsmWithLargeBetaEqualsSignAttacks) {
  TinyCnn model;
  auto x = images(5, 4, 16);
  auto y = model.forward(x).argmax(1);
  // The SD-SGSM family early-stops by default; the classic attacks do not.
  auto o = AttackOptions().set_alpha(2.0 / 255).set_early_stop(false);
  SdsgsmOptions sd = sd4().set_beta(1e9);
  auto sgsm = make_attack("sgsm", AttackOptions(o).set_decay(0.0), sd)->run(model, x, y).adversarial;
  auto ifgsm = make_attack("ifgsm", o)->run(model, x, y).adversarial;
  EXPECT_LE((sgsm - ifgsm).abs().max().item<float>(), 1e-6);
  auto sgsm_m = make_attack("sgsm", AttackOptions(o).set_decay(1.0), sd)->run(model, x, y).adversarial;
  auto mifgsm = make_attack("mifgsm", o)->run(model, x, y).adversarial;
  EXPECT_LE((sgsm_m - mifgsm).abs().max().item<float>(), 1e-6);
  // A small beta gives smaller steps, so less distortion than the sign.
  auto smooth = make_attack("sgsm", AttackOptions(o).set_decay(0.0), sd4().set_beta(0.5))
                    ->run(model, x, y).adversarial;
  EXPECT_LT((smooth - x).norm().item<float>(), (ifgsm - x).norm().item<float>());
}

TEST(Sdsgsm, SmoothedSignIsScaleFreeAndGuarded) {
  auto gen = at::detail::createCPUGenerator(5);
  auto g = torch::randn({2, 3, 4, 4}, gen);
  EXPECT_TRUE(torch::allclose(smoothed_sign(g, 1.0), smoothed_sign(g * 1000, 1.0), 1e-5, 1e-6));
  auto zero = smoothed_sign(torch::zeros({1, 3, 4, 4}), 1.0);
  EXPECT_TRUE(zero.eq(0).all().item<bool>());
  EXPECT_LE(smoothed_sign(g, 3.0).abs().max().item<float>(), 1.0f);
}

TEST(Sdsgsm, EarlyStop8bitFreezesOnlySamplesWhoseRoundedAdversarialSucceeds) {
  TinyCnn model;
  auto x = quantize_8bit(images(64, 11, 16));  // 8-bit images, as data sets hold them
  auto y = model.forward(x).argmax(1);
  // Small, fractional steps: early stop leaves samples just past the boundary, where rounding
  // to 8-bit pixels can take them back.
  auto options = AttackOptions().set_steps(20).set_alpha(0.3 / 255);
  int64_t flipped_back_without = 0;
  for (bool eight : {false, true}) {
    for (const auto& v : variants()) {
      auto attack = make_attack(v, AttackOptions(options).set_early_stop_8bit(eight), sd4());
      EXPECT_EQ(attack->config().value("early_stop_8bit", false), eight) << v;
      auto r = attack->run(model, x, y);
      auto pred8 = model.forward(quantize_8bit(r.adversarial)).argmax(1);
      // Frozen by the attack: succeeded before the last step (not already wrong on the clean image).
      auto frozen = r.iterations.lt(20).logical_and(r.clean_pred.eq(y));
      ASSERT_GT(frozen.sum().item<int64_t>(), 0) << v;
      auto fails8 = frozen.logical_and(pred8.eq(y));
      if (eight) {
        EXPECT_EQ(fails8.sum().item<int64_t>(), 0) << v;
      } else {
        flipped_back_without += fails8.sum().item<int64_t>();
      }
    }
  }
  EXPECT_GT(flipped_back_without, 0) << "the case the option exists for does not occur here";
  // One step, no early stop: FGSM ignores it, as it ignores --early-stop (one option set serves a comparison).
  EXPECT_FALSE(make_attack("fgsm", AttackOptions().set_early_stop_8bit(true))->config().contains("early_stop_8bit"));
  EXPECT_TRUE(Contains(error_message([] { AttackOptions().set_early_stop(false).set_early_stop_8bit(true).validate(); }),
                       "--early-stop-8bit needs early stop"));
}

TEST(Sdsgsm, EveryVariantIsBatchConsistentAndDeterministic) {
  TinyCnn model;
  auto x = images(4, 6, 16);
  auto y = model.forward(x).argmax(1);
  for (const auto& v : variants()) {
    for (bool early : {false, true}) {
      auto attack = make_attack(v, AttackOptions().set_early_stop(early).set_seed(3), sd4());
      auto batch = attack->run(model, x, y);
      auto again = attack->run(model, x, y);
      EXPECT_TRUE(torch::equal(batch.adversarial, again.adversarial)) << v;
      for (int64_t i = 0; i < 4; ++i) {
        auto one = attack->run(model, x.narrow(0, i, 1), y.narrow(0, i, 1), torch::tensor({i}, torch::kInt64));
        EXPECT_TRUE(torch::allclose(one.adversarial[0], batch.adversarial[i], 0, 1e-6)) << v << " " << i;
      }
    }
  }
}

TEST(Sdsgsm, RecomputedMapStillBoundsThePerturbation) {
  TinyCnn model;
  auto x = images(3, 8, 16);
  auto y = model.forward(x).argmax(1);
  // All 10 steps (no early stop), so the map is recomputed at steps 3, 6 and 9.
  AttackOptions o;
  o.set_early_stop(false);
  auto r = make_attack("sdsgsm", o, sd4().set_map("soft").set_recompute_every(3).set_rescale_step(true))->run(model, x, y);
  EXPECT_LE((r.adversarial - x).abs().max().item<float>(), 8.0 / 255 + 1e-6);
  EXPECT_GT(r.allocation_seconds, 0.0);
  // The recomputed maps follow the moving image: the result differs from one map for all steps
  // (this fails if recompute_every is ignored).
  auto once = make_attack("sdsgsm", o, sd4().set_map("soft").set_rescale_step(true))->run(model, x, y);
  EXPECT_FALSE(torch::equal(r.adversarial, once.adversarial));
}

TEST(Sdsgsm, InvalidParametersAreRejected) {
  TinyCnn model;
  auto x = images(1, 9, 16);
  auto y = torch::zeros({1}, torch::kInt64);
  auto fails = [&](const SdsgsmOptions& sd) {
    return error_message([&] { make_attack("sdsgsm", AttackOptions(), sd)->run(model, x, y); });
  };
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_rho(0)), "--rho"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_rho(1.5)), "--rho"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_lambda(-0.1)), "--lambda"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_lambda(1.1)), "--lambda"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_beta(0)), "--beta"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_map("fuzzy")), "--map"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_window(40).set_stride(4))),
                       "--window 40 is larger than the 16x16 image"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_window(4).set_stride(5))), "--stride"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_stride(9))),
                       "--stride 9 is larger than the 8x8 window (half the 16x16 image)"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_window(-1))), "--window must be >= 1, or 0"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_fill("noise"))), "--fill"));
  EXPECT_TRUE(Contains(fails(SdsgsmOptions().set_ddi(DdiOptions().set_score("entropy"))), "--score"));
}

TEST(Ddi, SensitivityCacheServesEachSampleOnceAndChangesNothing) {
  TinyCnn model;
  auto x = images(6, 12, 16);
  auto y = model.forward(x).argmax(1);
  auto ids = torch::arange(100, 106, torch::kInt64);
  DdiOptions ddi = DdiOptions().set_window(4).set_stride(4);
  auto cache = std::make_shared<SensitivityCache>(ddi);
  auto direct = sensitivity_map(model, x, y, ddi);
  // Any subset first, then all: the maps equal the direct ones and each is computed once.
  auto part = cache->get(model, x.narrow(0, 2, 3), y.narrow(0, 2, 3), ids.narrow(0, 2, 3));
  EXPECT_TRUE(torch::equal(part, direct.narrow(0, 2, 3)));
  EXPECT_EQ(cache->computed(), 3);
  EXPECT_TRUE(torch::allclose(cache->get(model, x, y, ids), direct, 0, 1e-7));
  EXPECT_EQ(cache->computed(), 6);
  // An attack served by the cache equals one that computes its own maps, for several settings.
  auto o = AttackOptions().set_early_stop(false);
  for (double lambda : {0.3, 0.7}) {
    SdsgsmOptions sd = sd4().set_ddi(ddi).set_lambda(lambda);
    auto cached = make_sdsgsm_variant("sdsgsm", o, sd, cache)->run(model, x, y, ids);
    auto own = make_sdsgsm_variant("sdsgsm", o, sd)->run(model, x, y, ids);
    EXPECT_TRUE(torch::allclose(cached.adversarial, own.adversarial, 0, 1e-6)) << lambda;
  }
  EXPECT_EQ(cache->computed(), 6);
  // A cache made for other DDI options is refused.
  EXPECT_TRUE(Contains(error_message([&] {
                         make_sdsgsm_variant("sdsgsm", o, sd4().set_ddi(DdiOptions().set_window(8).set_stride(8)),
                                             cache);
                       }),
                       "DDI options"));
}

TEST(Sdsgsm, EarlyStopComputesNoMapForSamplesAlreadyMisclassified) {
  TinyCnn model;
  auto x = images(6, 13, 16);
  auto pred = model.forward(x).argmax(1);
  auto y = pred.clone();
  y[1] = (pred[1].item<int64_t>() + 1) % 10;  // samples 1 and 4 are misclassified before the attack
  y[4] = (pred[4].item<int64_t>() + 3) % 10;
  auto ids = torch::arange(10, 16, torch::kInt64);
  auto cache = std::make_shared<SensitivityCache>(grid4());
  auto r = make_sdsgsm_variant("sdsgsm", AttackOptions(), sd4(), cache)->run(model, x, y, ids);
  EXPECT_EQ(cache->computed(), 4);
  EXPECT_TRUE(torch::equal(r.iterations.index({torch::tensor({1, 4})}), torch::zeros({2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(r.adversarial[1], x[1]));
  EXPECT_TRUE(torch::equal(r.adversarial[4], x[4]));
  // The others are attacked exactly as in a batch without the misclassified samples.
  auto keep = torch::tensor({0, 2, 3, 5}, torch::kInt64);
  auto alone = make_sdsgsm_variant("sdsgsm", AttackOptions(), sd4())
                   ->run(model, x.index_select(0, keep), y.index_select(0, keep), ids.index_select(0, keep));
  EXPECT_TRUE(torch::allclose(r.adversarial.index_select(0, keep), alone.adversarial, 0, 1e-6));
  // Without early stop every sample gets its map.
  auto all = std::make_shared<SensitivityCache>(grid4());
  make_sdsgsm_variant("sdsgsm", AttackOptions().set_early_stop(false), sd4(), all)->run(model, x, y, ids);
  EXPECT_EQ(all->computed(), 6);
}
