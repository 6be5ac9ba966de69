// The attack engine and the classic attacks: closed forms, bounds, invariants, determinism.
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::LinearClassifier;
using sdsgsm_test::TinyCnn;

namespace {

torch::Tensor random_images(int64_t n, uint64_t seed, int64_t h = 8, int64_t w = 8) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand({n, 3, h, w}, gen, torch::kFloat32);
}

torch::Tensor random_labels(int64_t n, uint64_t seed, int64_t k = 10) {
  auto gen = at::detail::createCPUGenerator(seed + 99);
  return torch::randint(0, k, {n}, gen, torch::kInt64);
}

/// The registry's fixed-budget attacks outside the SD-SGSM family (test_sdsgsm.cpp has those).
const std::vector<std::string>& all_attacks() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& a : attack_registry()) {
      if (a.family == AttackFamily::FixedBudget && !a.has(kSdFamily)) v.push_back(a.name);
    }
    return v;
  }();
  return names;
}

}  // namespace

TEST(Fgsm, EqualsClosedFormOnLinearModel) {
  LinearClassifier model(4, 3, 4, 4);
  auto x = random_images(5, 3, 4, 4);
  auto y = torch::tensor({0, 1, 2, 3, 1}, torch::kInt64);
  const double eps = 0.05;
  auto attack = make_attack("fgsm", AttackOptions().set_eps(eps));
  auto adv = attack->run(model, x, y).adversarial;
  // d CE / d x = W^T (softmax(Wx + b) - onehot(y)).
  auto logits = torch::addmm(model.bias, x.to(torch::kFloat64).flatten(1), model.weight.t());
  auto p = torch::softmax(logits, 1) - torch::one_hot(y, 4).to(torch::kFloat64);
  auto grad = torch::mm(p, model.weight).view_as(x);
  auto expected = (x.to(torch::kFloat64) + eps * grad.sign()).clamp(0, 1).to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(adv, expected, 0, 1e-7)) << (adv - expected).abs().max().item<float>();
}

TEST(Attacks, StayInBudgetAndInUnitRange) {
  TinyCnn model;
  auto x = random_images(6, 5);
  auto y = random_labels(6, 5);
  for (const auto& name : all_attacks()) {
    for (bool early : {false, true}) {
      auto attack = make_attack(name, AttackOptions().set_eps(8.0 / 255).set_early_stop(early).set_seed(3));
      auto adv = attack->run(model, x, y).adversarial;
      EXPECT_GE(adv.min().item<float>(), 0.0f) << name;
      EXPECT_LE(adv.max().item<float>(), 1.0f) << name;
      EXPECT_LE((adv - x).abs().max().item<float>(), 8.0 / 255 + 1e-6) << name;
      EXPECT_GT((adv - x).abs().max().item<float>(), 1.0 / 255) << name << ": the attack did not move";
    }
  }
}

TEST(Attacks, LeaveTheInputUntouched) {
  TinyCnn model;
  auto x = random_images(4, 6);
  auto y = random_labels(4, 6);
  auto x_copy = x.clone(), y_copy = y.clone();
  for (const auto& name : all_attacks()) {
    make_attack(name, AttackOptions().set_early_stop(true))->run(model, x, y);
    EXPECT_TRUE(torch::equal(x, x_copy)) << name;
    EXPECT_TRUE(torch::equal(y, y_copy)) << name;
  }
}

TEST(Attacks, BatchEqualsEachSampleAlone) {
  TinyCnn model;
  auto x = random_images(5, 7);
  auto y = random_labels(5, 7);
  auto ids = torch::arange(100, 105, torch::kInt64);
  for (const auto& name : all_attacks()) {
    for (auto mode : {TargetMode::None, TargetMode::Random}) {
      auto attack = make_attack(name, AttackOptions().set_seed(11).set_early_stop(true).set_targeted(mode));
      auto batch = attack->run(model, x, y, ids);
      for (int64_t i = 0; i < 5; ++i) {
        auto one = attack->run(model, x.narrow(0, i, 1), y.narrow(0, i, 1), ids.narrow(0, i, 1));
        EXPECT_TRUE(torch::allclose(one.adversarial[0], batch.adversarial[i], 0, 1e-6)) << name << " sample " << i;
        EXPECT_EQ(one.iterations[0].item<int64_t>(), batch.iterations[i].item<int64_t>()) << name;
        EXPECT_EQ(one.target[0].item<int64_t>(), batch.target[i].item<int64_t>()) << name;
      }
    }
  }
}

TEST(Attacks, ScalarBudgetEqualsUniformPerPixelMap) {
  TinyCnn model;
  auto x = random_images(4, 8);
  auto y = random_labels(4, 8);
  AttackOptions o;
  o.set_seed(2);
  for (bool momentum : {false, true}) {
    AttackHooks plain;
    plain.momentum = momentum;
    AttackHooks mapped = plain;
    mapped.allocation = [](Classifier&, const AllocationInput& in) {
      return torch::ones({in.x.size(0), 1, in.x.size(2), in.x.size(3)});
    };
    auto a = EngineAttack("plain", o, plain).run(model, x, y).adversarial;
    auto b = EngineAttack("mapped", o, mapped).run(model, x, y).adversarial;
    EXPECT_TRUE(torch::equal(a, b));
  }
}

TEST(Attacks, PerPixelMapBoundsEachPixel) {
  TinyCnn model;
  auto x = random_images(3, 9);
  auto y = random_labels(3, 9);
  AttackHooks hooks;
  auto map = torch::full({3, 1, 8, 8}, 0.25);
  map.narrow(2, 0, 4).fill_(1.0);  // top half: full budget; bottom half: a quarter
  hooks.allocation = [map](Classifier&, const AllocationInput&) { return map; };
  const double eps = 8.0 / 255;
  auto adv = EngineAttack("mapped", AttackOptions().set_eps(eps), hooks).run(model, x, y).adversarial;
  auto delta = (adv - x).abs();
  EXPECT_LE(delta.narrow(2, 4, 4).max().item<float>(), 0.25 * eps + 1e-6);
  EXPECT_GT(delta.narrow(2, 0, 4).max().item<float>(), 0.25 * eps + 1e-4);
}

TEST(Attacks, SameSeedGivesBitIdenticalOutput) {
  TinyCnn model;
  auto x = random_images(4, 10);
  auto y = random_labels(4, 10);
  for (const auto& name : all_attacks()) {
    auto o = AttackOptions().set_seed(42).set_targeted(TargetMode::Random);
    auto a = make_attack(name, o)->run(model, x, y);
    auto b = make_attack(name, o)->run(model, x, y);
    EXPECT_TRUE(torch::equal(a.adversarial, b.adversarial)) << name;
  }
  auto a = make_attack("pgd", AttackOptions().set_seed(1))->run(model, x, y).adversarial;
  auto b = make_attack("pgd", AttackOptions().set_seed(2))->run(model, x, y).adversarial;
  EXPECT_FALSE(torch::equal(a, b)) << "PGD's random start must depend on the seed";
}

TEST(Attacks, MomentumWithZeroDecayEqualsIfgsm) {
  TinyCnn model;
  auto x = random_images(6, 12);
  auto y = random_labels(6, 12);
  auto o = AttackOptions().set_decay(0.0);
  auto mi = make_attack("mifgsm", o)->run(model, x, y).adversarial;
  auto i = make_attack("ifgsm", o)->run(model, x, y).adversarial;
  EXPECT_TRUE(torch::equal(mi, i));
  auto mi1 = make_attack("mifgsm", AttackOptions())->run(model, x, y).adversarial;
  EXPECT_FALSE(torch::equal(mi1, i)) << "decay 1 must differ from I-FGSM";
}

TEST(Attacks, TargetedHitsTargetMoreOftenThanChance) {
  LinearClassifier model(10, 3, 8, 8, 4);
  auto x = random_images(200, 13);
  auto y = random_labels(200, 13);
  auto r = make_attack("ifgsm", AttackOptions().set_eps(0.1).set_alpha(0.02).set_targeted(TargetMode::Random))
               ->run(model, x, y);
  EXPECT_TRUE(r.target.ne(y).all().item<bool>()) << "random targets must differ from the label";
  double hit = r.adv_pred.eq(r.target).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(hit, 0.5) << "targeted hit rate " << hit << " vs chance 0.1";
  auto given = make_attack("ifgsm", AttackOptions().set_eps(0.1).set_alpha(0.02).set_targeted(TargetMode::Given)
                                        .set_target_label(3))->run(model, x, y);
  EXPECT_TRUE(given.target.eq(3).all().item<bool>());
  EXPECT_GT(given.adv_pred.eq(3).to(torch::kFloat64).mean().item<double>(), 0.5);
  auto ll = make_attack("fgsm", AttackOptions().set_targeted(TargetMode::LeastLikely))->run(model, x, y);
  EXPECT_TRUE(torch::equal(ll.target, model.forward(x).argmin(1)));
}

TEST(Attacks, EarlyStopFreezesSucceededSamples) {
  TinyCnn model;
  auto x = random_images(20, 14);
  auto y = model.forward(x).argmax(1);  // every sample starts correctly classified
  auto o = AttackOptions().set_eps(16.0 / 255).set_steps(10);
  auto full = make_attack("ifgsm", o)->run(model, x, y);
  auto early = make_attack("ifgsm", o.set_early_stop(true))->run(model, x, y);
  EXPECT_TRUE(full.iterations.eq(10).all().item<bool>());
  EXPECT_TRUE(early.iterations.le(10).all().item<bool>());
  EXPECT_TRUE(early.iterations.ge(1).all().item<bool>());
  EXPECT_LT(early.iterations.sum().item<int64_t>(), full.iterations.sum().item<int64_t>());
  // A sample frozen after t steps equals the first t steps of the full attack's trajectory.
  for (int64_t i = 0; i < 20; ++i) {
    int64_t t = early.iterations[i].item<int64_t>();
    if (!early.success[i].item<bool>() || t == 10) continue;
    auto partial = make_attack("ifgsm", AttackOptions().set_eps(16.0 / 255).set_steps(t))
                       ->run(model, x.narrow(0, i, 1), y.narrow(0, i, 1));
    EXPECT_TRUE(torch::allclose(partial.adversarial[0], early.adversarial[i], 0, 1e-6)) << i;
  }
  double l2_full = (full.adversarial - x).flatten(1).norm(2, 1).mean().item<double>();
  double l2_early = (early.adversarial - x).flatten(1).norm(2, 1).mean().item<double>();
  EXPECT_LT(l2_early, l2_full);
}

TEST(Attacks, InvalidOptionsAreRejected) {
  using sdsgsm_test::Contains;
  using sdsgsm_test::error_message;
  EXPECT_TRUE(Contains(error_message([] { make_attack("ifgsm", AttackOptions().set_eps(-0.1)); }), "--eps"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("ifgsm", AttackOptions().set_steps(0)); }), "--steps"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("ifgsm", AttackOptions().set_alpha(0)); }), "--alpha"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("mifgsm", AttackOptions().set_decay(-1)); }), "--decay"));
  EXPECT_TRUE(Contains(error_message([] { make_attack("nosuch", AttackOptions()); }), "unknown attack 'nosuch'"));
  EXPECT_TRUE(Contains(error_message([] { parse_target_mode("sideways"); }), "--targeted"));
  EXPECT_TRUE(Contains(error_message([] {
                         make_attack("ifgsm", AttackOptions().set_targeted(TargetMode::Given));
                       }),
                       "--target-label"));
  TinyCnn model;
  EXPECT_TRUE(Contains(error_message([&] {
                         make_attack("ifgsm", AttackOptions().set_targeted(TargetMode::Given).set_target_label(10))
                             ->run(model, random_images(1, 1), random_labels(1, 1));
                       }),
                       "--target-label 10"));
}

// Every options struct serialises both ways: from_json(to_json(o)) is o, keys it lacks keep their
// defaults, and a value of the wrong type is an error naming its key.
TEST(Options, JsonRoundTrip) {
  AttackOptions a;
  a.set_eps(6.0 / 255).set_alpha(1.0 / 255).set_steps(7).set_decay(0.5).set_early_stop(true).set_early_stop_8bit(true)
      .set_random_start(true).set_seed(42).set_targeted(TargetMode::Given).set_target_label(3);
  EXPECT_EQ(AttackOptions::from_json(a.to_json()).to_json(), a.to_json());
  EXPECT_EQ(AttackOptions::from_json(nlohmann::json::object()).to_json(), AttackOptions().to_json());
  MinNormOptions m;
  m.set_norm(Norm::Linf).set_candidates(3).set_overshoot(0.1).set_binary_steps(2).set_initial_const(5).set_confidence(1)
      .set_learning_rate(0.3).set_norm_gamma(0.2).set_initial_norm(0.5);
  EXPECT_EQ(MinNormOptions::from_json(m.to_json()).to_json(), m.to_json());
  SdsgsmOptions s;
  s.set_rho(0.2).set_lambda(0.3).set_map("soft").set_gamma(2).set_beta(4).set_step_factor(2).set_rescale_step(true)
      .set_recompute_every(2).set_ddi(DdiOptions().set_window(8).set_stride(4).set_fill("blur").set_score("margin"));
  EXPECT_EQ(SdsgsmOptions::from_json(s.to_json()).to_json(), s.to_json());
  using sdsgsm_test::Contains;
  const auto message = sdsgsm_test::error_message;
  EXPECT_TRUE(Contains(message([] { AttackOptions::from_json({{"steps", "ten"}}); }), "'steps'"));
  EXPECT_TRUE(Contains(message([] { AttackOptions::from_json({{"targeted", "sideways"}}); }), "sideways"));
  EXPECT_TRUE(Contains(message([] { MinNormOptions::from_json({{"norm", "l7"}}); }), "--norm"));
}

namespace {

/// Checks what every declaration of a set must hold: one word and one JSON key per field, the
/// keyword the word with '_', and the defaults read back from their JSON.
template <class O>
void expect_well_declared(const OptionSet<O>& set) {
  std::set<std::string> words, keys;
  for (const auto& f : set.fields()) {
    EXPECT_TRUE(words.insert(f.word).second) << set.name() << ": word " << f.word << " declared twice";
    EXPECT_TRUE(keys.insert(f.key).second) << set.name() << ": key " << f.key << " declared twice";
    EXPECT_EQ(f.keyword().find('-'), std::string::npos) << f.word;
    EXPECT_FALSE(f.help.empty()) << f.word;
    EXPECT_EQ(set.find(f.word), &f);
    EXPECT_EQ(set.find_key(f.key), &f);
  }
  O read;
  set.read_json(set.to_json(O()), read);
  EXPECT_EQ(set.to_json(read), set.to_json(O()));
}

}  // namespace

// Each options struct is its declarations: the JSON keys, the words (flags, keywords) and the
// checks come from one OptionField per field.
TEST(Options, EverySetIsWellDeclared) {
  expect_well_declared(AttackOptions::option_set());
  expect_well_declared(MinNormOptions::option_set());
  expect_well_declared(SdsgsmOptions::option_set());
  expect_well_declared(DdiOptions::option_set());
  // The struct's to_json is its set's: the keys are the declarations'.
  const nlohmann::json written = MinNormOptions().set_learning_rate(0.5).to_json();
  for (const auto& [key, value] : written.items()) {
    EXPECT_NE(MinNormOptions::option_set().find_key(key), nullptr) << key;
  }
}

TEST(Options, ADeclarationParsesChecksAndWritesItsField) {
  const auto& set = MinNormOptions::option_set();
  const auto* f = set.find("norm-gamma");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->key, "norm_gamma");
  EXPECT_EQ(f->keyword(), "norm_gamma");
  EXPECT_EQ(set.find("norm_gamma"), f);
  MinNormOptions o;
  f->parse(o, "1/4");  // numbers take fractions, as --eps does
  EXPECT_DOUBLE_EQ(o.norm_gamma, 0.25);
  EXPECT_EQ(o.to_json()["norm_gamma"], 0.25);
  using sdsgsm_test::Contains;
  const auto message = sdsgsm_test::error_message;
  EXPECT_TRUE(Contains(message([&] { f->parse(o, "abc"); }), "--norm-gamma: 'abc' is not a number"));
  EXPECT_TRUE(Contains(message([&] { set.find("levels")->parse(o, "2.5"); }), "--levels: '2.5' is not an integer"));
  o.set_norm_gamma(1);
  EXPECT_TRUE(Contains(message([&] { o.validate(); }), "--norm-gamma must be in (0, 1) (got 1)"));
  // A JSON key may differ from the word: DDI's memory bound is --ddi-batch, read as max_batch and
  // never written (it changes no result).
  const auto* batch = DdiOptions::option_set().find("ddi-batch");
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(batch->key, "max_batch");
  EXPECT_EQ(DdiOptions::from_json({{"max_batch", 7}}).max_batch, 7);
  EXPECT_FALSE(DdiOptions().to_json().contains("max_batch"));
  // An optional field unsets with null; an unsigned one refuses a negative value, naming its flag.
  AttackOptions a;
  AttackOptions::option_set().find("alpha")->put(a, 0.5);
  EXPECT_EQ(a.alpha, std::optional<double>(0.5));
  AttackOptions::option_set().find("alpha")->put(a, nullptr);
  EXPECT_FALSE(a.alpha.has_value());
  EXPECT_TRUE(Contains(message([&] { AttackOptions::option_set().find("seed")->parse(a, "-1"); }),
                       "--seed must be >= 0 (got -1)"));
  // Python's alias of a reserved word.
  EXPECT_EQ(SdsgsmOptions::option_set().find("lambda_"), SdsgsmOptions::option_set().find("lambda"));
}

// A word two sets declare (norm: the minimum-norm distance, APGD's ball) belongs to each set's
// family; a minimum-norm attack's configuration takes the shared options of its family only.
TEST(Options, FamiliesOwnTheirOptions) {
  const auto* ball = AttackOptions::option_set().find("norm");
  const auto* distance = MinNormOptions::option_set().find("norm");
  ASSERT_NE(ball, nullptr);
  ASSERT_NE(distance, nullptr);
  EXPECT_TRUE(ball->applies(family_bit(AttackFamily::Adaptive)));
  EXPECT_FALSE(ball->applies(family_bit(AttackFamily::MinimumNorm)));
  EXPECT_TRUE(distance->applies(family_bit(AttackFamily::MinimumNorm)));
  // The words the sets share: a new one is a choice the CLI resolves with --SET.word.
  std::vector<std::string> shared;
  for (const auto& f : AttackOptions::option_set().fields()) {
    int sets = (MinNormOptions::option_set().find(f.word) != nullptr) + (SdsgsmOptions::option_set().find(f.word) != nullptr) +
               (DdiOptions::option_set().find(f.word) != nullptr);
    if (sets > 0) shared.push_back(f.word);
  }
  EXPECT_EQ(shared, std::vector<std::string>{"norm"});
  auto ddn = make_attack("ddn", AttackOptions().set_eps(0.1).set_early_stop(true).set_refine(3).set_steps(5));
  const nlohmann::json c = ddn->config();
  for (const char* key : {"steps", "seed", "targeted", "refine", "refine_step", "refine_gamma", "norm", "levels"}) {
    EXPECT_TRUE(c.contains(key)) << key;
  }
  for (const char* key : {"eps", "early_stop", "random_start", "restarts", "candidates"}) {
    EXPECT_FALSE(c.contains(key)) << key;
  }
  EXPECT_EQ(c["steps"], 5);
  EXPECT_EQ(c["norm"], "l2");
}
