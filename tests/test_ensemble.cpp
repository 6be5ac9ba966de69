// AutoAttack's versions in `sdsgsm robust` (sdsgsm/robust.hpp): the sequences of standard, plus and
// rand; APGD's EOT gradient is the mean of the per-pass gradients of a randomised model and leaves
// APGD unchanged on a deterministic one; a randomised model switches the default to rand and stops
// a version asked for; 2- and 3-class models get the sequence AutoAttack's adaptation gives; the
// model checks (probability outputs, targets) warn where they should.
#include <algorithm>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/eot.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_report.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::LinearClassifier;
using sdsgsm_test::own_labelled_source;
using sdsgsm_test::TinyCnn;

namespace {

namespace F = torch::nn::functional;

/// A randomised model: logits = W tanh(3 (x + 0.3 n)) + b with fresh Gaussian noise n from its own
/// generator in every forward pass, so its input gradient changes from pass to pass.
class NoisyClassifier : public Classifier {
 public:
  NoisyClassifier(int64_t k, uint64_t seed) : linear_(k, 3, 8, 8, seed), gen_(at::detail::createCPUGenerator(seed)) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor noise = torch::randn(x.sizes(), gen_, torch::kFloat32);
    return linear_.forward(torch::tanh(3 * (x + 0.3 * noise)));
  }
  std::string name() const override { return "noisy"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return linear_.parameter_count(); }
  void reseed(uint64_t seed) { gen_.set_current_seed(seed); }

 private:
  LinearClassifier linear_;
  at::Generator gen_;
};

/// A linear model whose outputs are probabilities (a softmax inside).
class SoftmaxClassifier : public Classifier {
 public:
  explicit SoftmaxClassifier(uint64_t seed) : linear_(10, 3, 8, 8, seed) {}
  torch::Tensor forward(const torch::Tensor& x) override { return torch::softmax(linear_.forward(x), 1); }
  std::string name() const override { return "softmax"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return linear_.parameter_count(); }

 private:
  LinearClassifier linear_;
};

RobustOptions quick_ensemble() {
  return RobustOptions().set_steps(10).set_queries(200).set_check_count(0).set_batch_size(8).set_progress(false);
}

std::vector<std::string> ensemble_stages(const RobustResult& r) {
  std::vector<std::string> names;
  for (const auto& s : r.stages) names.push_back(s.attack);
  return names;
}

const RobustCheck& find_check(const RobustResult& r, const std::string& name) {
  for (const auto& c : r.checks) {
    if (c.name == name) return c;
  }
  throw Error("no check " + name);
}

}  // namespace

TEST(Ensemble, VersionsRunAutoAttacksSequences) {
  using V = std::vector<std::string>;
  RobustOptions o;
  EXPECT_EQ(o.version(), "standard");
  EXPECT_EQ(o.sequence(), (V{"apgd-ce", "apgd-t", "fab-t", "square"}));
  o.set_ensemble("plus");
  EXPECT_EQ(o.sequence(), (V{"apgd-ce", "apgd-dlr", "square", "apgd-t", "fab-t"}));
  std::vector<int64_t> restarts;
  for (const auto& p : o.plan()) restarts.push_back(p.restarts);
  EXPECT_EQ(restarts, (std::vector<int64_t>{5, 5, 1, 1, 1}));
  EXPECT_EQ(o.attack_options("apgd-dlr", o.eps).restarts, 5);
  EXPECT_EQ(RobustOptions(o).set_norm(Norm::L2).set_eps(0.5).sequence(),
            (V{"apgd-ce", "apgd-dlr", "square", "apgd-t", "fab-t"}));
  EXPECT_EQ(RobustOptions(o).set_norm(Norm::L1).set_eps(10).sequence(), (V{"apgd-ce", "apgd-dlr", "square", "apgd-t", "fab-t"}));
  o.set_ensemble("rand");
  EXPECT_EQ(o.sequence(), (V{"apgd-ce", "apgd-dlr"}));
  for (const auto& p : o.plan()) EXPECT_EQ(p.eot_samples, 20);
  EXPECT_EQ(o.make_stage_attack("apgd-ce", o.eps)->config().at("eot_samples").get<int64_t>(), 20);
  EXPECT_EQ(o.attack_options("apgd-ce", o.eps).steps, 100);
  EXPECT_EQ(RobustOptions(o).set_eot_samples(3).plan()[1].eot_samples, 3);
  o.validate();

  auto bad = [](RobustOptions r) { return error_message([&] { r.validate(); }); };
  EXPECT_TRUE(Contains(bad(RobustOptions().set_ensemble("full")), "--ensemble must be standard, plus, rand or custom"));
  EXPECT_TRUE(Contains(bad(RobustOptions().set_ensemble("custom")), "--ensemble custom needs --attacks"));
  RobustOptions both = RobustOptions().set_ensemble("plus").set_ensemble_given(true);
  both.attacks = {"apgd-ce"};
  EXPECT_TRUE(Contains(bad(both), "--attacks is a custom sequence"));
  both.set_ensemble("custom");
  EXPECT_EQ(both.version(), "custom");
  EXPECT_EQ(both.sequence(), (V{"apgd-ce"}));
  EXPECT_EQ(both.to_json().at("ensemble").get<std::string>(), "custom");
}

// The EOT gradient equals the mean of N separate passes' gradients drawn from the same generator
// state, and differs from any single pass's (so the averaging is what the test sees).
TEST(Ensemble, EotGradientIsTheMeanOfThePerPassGradients) {
  NoisyClassifier model(10, 4);
  auto gen = at::detail::createCPUGenerator(9);
  const torch::Tensor x = torch::rand({3, 3, 8, 8}, gen, torch::kFloat32);
  const torch::Tensor y = torch::tensor({1, 4, 7}, torch::kInt64);
  auto ce = [&](const torch::Tensor& logits) {
    return F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  };
  constexpr int64_t kN = 6;
  model.reseed(123);
  EotPass eot = eot_gradient(model, x, ce, kN);

  model.reseed(123);
  std::vector<torch::Tensor> grads;
  torch::Tensor last_loss;
  for (int64_t s = 0; s < kN; ++s) {
    torch::Tensor point = x.detach().requires_grad_(true);
    torch::Tensor loss = ce(model.forward(point));
    grads.push_back(torch::autograd::grad({loss.sum()}, {point})[0]);
    last_loss = loss.detach();
  }
  const torch::Tensor mean = torch::stack(grads).mean(0);
  EXPECT_TRUE(torch::allclose(eot.grad, mean, 1e-5, 1e-7)) << (eot.grad - mean).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(eot.loss, last_loss));
  for (const auto& g : grads) EXPECT_GT((g - mean).abs().max().item<double>(), 1e-3);
  EXPECT_TRUE(Contains(error_message([&] { eot_gradient(model, x, ce, 0); }), "--eot-samples"));
}

// On a deterministic model the N passes agree: the l_inf step (the sign of the mean) and so the
// whole run are those of one pass, bit for bit, while the passes are counted N per step.
TEST(Ensemble, EotOnADeterministicModelLeavesApgdUnchanged) {
  TinyCnn model(3);
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::rand({6, 3, 8, 8}, gen, torch::kFloat32);
  const torch::Tensor y = model.forward(x).argmax(1);
  for (const char* name : {kApgdCe, kApgdT}) {
    SCOPED_TRACE(name);
    AttackOptions o = AttackOptions().set_eps(4.0 / 255).set_steps(12);
    AttackResult one = make_attack(name, o)->run(model, x, y);
    AttackResult four = make_apgd_eot(name, o, 4)->run(model, x, y);
    EXPECT_TRUE(torch::equal(one.adversarial, four.adversarial));
    EXPECT_TRUE(torch::equal(one.success, four.success));
    // The clean pass once; every gradient evaluation 4 times.
    EXPECT_TRUE(torch::equal(four.forward_passes - 1, 4 * (one.forward_passes - 1)));
    EXPECT_TRUE(torch::equal(four.backward_passes, 4 * one.backward_passes));
    EXPECT_GT(one.backward_passes.sum().item<int64_t>(), 0);
  }
  const std::string err = error_message([&] { make_apgd_eot(kSquare, AttackOptions().set_steps(10), 3); });
  EXPECT_TRUE(Contains(err, "--eot-samples: square")) << err;
  EXPECT_TRUE(Contains(error_message([&] { make_apgd_eot(kApgdCe, AttackOptions(), 0); }), "--eot-samples must be >= 1"));
  EXPECT_FALSE(make_apgd_eot(kApgdCe, AttackOptions(), 1)->config().contains("eot_samples"));
}

TEST(Ensemble, ARandomisedModelSwitchesTheDefaultToRand) {
  NoisyClassifier model(10, 2);
  Dataset keep;
  auto source = own_labelled_source(model, 12, 3, keep);
  RobustResult r = robust_accuracy(model, *source, quick_ensemble().set_eot_samples(2));
  // --eot-samples given: the standard version averages, and runs.
  EXPECT_EQ(r.ensemble, "standard");
  EXPECT_TRUE(find_check(r, "randomness").warned);

  r = robust_accuracy(model, *source, quick_ensemble());
  EXPECT_EQ(r.ensemble, "rand");
  EXPECT_EQ(ensemble_stages(r), (std::vector<std::string>{"apgd-ce", "apgd-dlr"}));
  const RobustCheck& c = find_check(r, "randomness");
  EXPECT_TRUE(c.ran && c.warned);
  EXPECT_TRUE(Contains(c.detail, "the rand version ran instead of standard")) << c.detail;
  // 20 passes per step: APGD-CE's passes are 20 per gradient evaluation plus the clean pass.
  ASSERT_GT(r.stages[0].attacked, 0);
  EXPECT_EQ(r.stages[0].backward_passes % 20, 0);
  bool named = false;
  for (const auto& w : r.warnings()) named = named || Contains(w, "randomised");
  EXPECT_TRUE(named);
  int64_t fooled = 0;
  for (const auto& s : r.stages) fooled += s.fooled;
  EXPECT_EQ(r.robust + fooled, r.clean_correct);

  for (const char* version : {"standard", "plus"}) {
    SCOPED_TRACE(version);
    const std::string err = error_message(
        [&] { robust_accuracy(model, *source, quick_ensemble().set_ensemble(version).set_ensemble_given(true)); });
    EXPECT_TRUE(Contains(err, "the model is randomised")) << err;
    EXPECT_TRUE(Contains(err, "--ensemble rand")) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos);
  }
  RobustResult asked = robust_accuracy(model, *source, quick_ensemble().set_ensemble("rand").set_ensemble_given(true));
  EXPECT_EQ(asked.ensemble, "rand");
}

TEST(Ensemble, ADeterministicModelKeepsTheVersion) {
  TinyCnn model(4);
  Dataset keep;
  auto source = own_labelled_source(model, 10, 21, keep);
  RobustResult r = robust_accuracy(model, *source, quick_ensemble().set_ensemble("standard").set_ensemble_given(true));
  EXPECT_EQ(r.ensemble, "standard");
  EXPECT_EQ(ensemble_stages(r), (std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"}));
  for (const char* name : {"randomness", "probabilities", "targets"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(find_check(r, name).ran);
    EXPECT_FALSE(find_check(r, name).warned) << find_check(r, name).detail;
  }
  EXPECT_EQ(r.to_json().at("ensemble").get<std::string>(), "standard");
  EXPECT_EQ(r.to_json().at("classes").get<int64_t>(), 10);

  // The model card: what a leaderboard entry needs, from the run's info, options and result.
  const nlohmann::json info = {{"model", "tinycnn"}, {"model_md5", "0123"}, {"version", "9.9"}};
  const nlohmann::json card = robust_card(info, quick_ensemble().to_json(), r);
  EXPECT_EQ(card.at("model").get<std::string>(), "tinycnn");
  EXPECT_EQ(card.at("model_md5").get<std::string>(), "0123");
  EXPECT_EQ(card.at("version").get<std::string>(), "9.9");
  EXPECT_EQ(card.at("threat_model").get<std::string>(), "l_inf");
  EXPECT_DOUBLE_EQ(card.at("eps").get<double>(), 8.0 / 255);
  EXPECT_EQ(card.at("ensemble").get<std::string>(), "standard");
  EXPECT_EQ(card.at("images").get<int64_t>(), 10);
  EXPECT_DOUBLE_EQ(card.at("clean_accuracy").get<double>(), r.clean_accuracy());
  EXPECT_DOUBLE_EQ(card.at("robust_accuracy").get<double>(), r.robust_accuracy());
  EXPECT_EQ(card.at("checks").size(), r.checks.size());
  EXPECT_EQ(card.at("checks").at("randomness").get<std::string>(), "ok");
  EXPECT_EQ(card.at("checks").at("more-steps").get<std::string>(), "not run");  // --check-count 0
  const nlohmann::json l2 = robust_card(info, quick_ensemble().set_norm(Norm::L2).set_eps(0.5).to_json(), r);
  EXPECT_EQ(l2.at("threat_model").get<std::string>(), "l2");
}

// DLR needs a third logit: on 2 classes APGD-T (and APGD-DLR) are left out with a note, FAB-T takes
// the one other class; on 3 classes everything runs, with 2 targets.
TEST(Ensemble, TwoAndThreeClassModelsGetAnAdaptedSequence) {
  for (int64_t k : {2, 3}) {
    SCOPED_TRACE(k);
    LinearClassifier model(k, 3, 8, 8, 11);
    Dataset keep;
    auto source = own_labelled_source(model, 10, 6, keep, 8, k);
    for (const char* version : {"standard", "plus"}) {
      SCOPED_TRACE(version);
      RobustResult r = robust_accuracy(model, *source, quick_ensemble().set_eps(16.0 / 255).set_ensemble(version));
      EXPECT_EQ(r.classes, k);
      const std::vector<std::string> names = ensemble_stages(r);
      const bool dlr = std::find(names.begin(), names.end(), "apgd-t") != names.end();
      EXPECT_EQ(dlr, k == 3);
      EXPECT_NE(std::find(names.begin(), names.end(), "fab-t"), names.end());
      bool noted = false;
      for (const auto& n : r.notes) noted = noted || Contains(n, "left out: the DLR loss needs 3 classes");
      EXPECT_EQ(noted, k == 2);
      const RobustCheck& t = find_check(r, "targets");
      EXPECT_TRUE(t.warned);
      EXPECT_TRUE(Contains(t.detail, fmt::format("run with {} target class{} instead of 9", k - 1, k == 2 ? "" : "es")))
          << t.detail;
      int64_t fooled = 0;
      for (const auto& s : r.stages) fooled += s.fooled;
      EXPECT_EQ(r.robust + fooled, r.clean_correct);
      EXPECT_GT(fooled, 0);
    }
  }
}

TEST(Ensemble, ProbabilityOutputsWarn) {
  SoftmaxClassifier model(8);
  Dataset keep;
  auto source = own_labelled_source(model, 8, 2, keep);
  RobustOptions o = quick_ensemble();
  o.attacks = {"apgd-ce"};
  RobustResult r = robust_accuracy(model, *source, o);
  const RobustCheck& c = find_check(r, "probabilities");
  EXPECT_TRUE(c.warned);
  EXPECT_TRUE(Contains(c.detail, "softmax")) << c.detail;
  EXPECT_FALSE(find_check(r, "targets").ran);  // no targeted attack in the sequence
}

// l1: AutoAttack's l1 standard version, Square included; the targets check names each targeted
// attack's count (APGD-T 5, FAB-T 9); the stages account for every clean-correct image.
TEST(Ensemble, L1RunsAutoAttacksL1Settings) {
  LinearClassifier model(10, 3, 8, 8, 13);
  Dataset keep;
  auto source = own_labelled_source(model, 12, 4, keep);
  RobustResult r = robust_accuracy(model, *source, quick_ensemble().set_norm(Norm::L1).set_eps(1.0));
  EXPECT_EQ(ensemble_stages(r), (std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"}));
  const RobustCheck& t = find_check(r, "targets");
  EXPECT_FALSE(t.warned);
  EXPECT_EQ(t.detail, "the model has 10 classes: APGD-T with 5 target classes, FAB-T with 9 target classes");
  int64_t fooled = 0;
  for (const auto& s : r.stages) fooled += s.fooled;
  EXPECT_EQ(r.robust + fooled, r.clean_correct);
  // APGD-CE: 1 to 5 restarts per image, each 10 steps and the 3 legs' start points.
  EXPECT_LE(r.stages[0].backward_passes, r.stages[0].attacked * 5 * (10 + 3));
  EXPECT_GE(r.stages[0].backward_passes, r.stages[0].attacked * (10 + 3));
}
