// The SD-SGSM tuning sweep: grid expansion, the selection rule, map reuse, and the CLI's guard
// against tuning on the evaluation images.
#include <gtest/gtest.h>

#include "sdsgsm/reproduce.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/sweep.hpp"
#include "sdsgsm/tuning.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;

namespace {

SweepRow row(double asr, double ssim, double l2, bool cheap) {
  SweepRow r;
  r.summary["float"] = {{"asr", asr}, {"ssim_mean", ssim}, {"l2_mean", l2}, {"psnr_mean", 40.0}};
  r.summary["rounded_8bit"] = r.summary["float"];
  r.summary["images"] = 10;
  r.summary["clean_correct"] = 9;
  r.summary["attacked"] = 9;
  r.summary["iterations_mean"] = 1.5;
  r.meets_asr = asr >= 0.999;
  r.ddi_within_iterations = cheap;
  r.windows = 4;  // a 16 x 16 grid on 32 x 32, as a sweep's grid names it (explicit sides)
  r.sd.ddi.window = 16;
  r.sd.ddi.stride = 16;
  return r;
}

}  // namespace

TEST(Sweep, GridIsTheProductWithoutInvalidOrRedundantPoints) {
  SweepGrid g;
  g.window = {4, 8};
  g.stride = {2, 4, 8};  // (4,2) (4,4) (8,2) (8,4) (8,8); (4,8) is skipped
  g.rho = {0.1, 0.25};
  g.lambda = {0.3, 0.5, 0.7};
  g.map = {"hard", "soft"};  // soft: one rho only
  g.beta = {1, 2};
  g.step_factor = {2.5};
  auto configs = g.expand(SdsgsmOptions().set_gamma(2.0));
  EXPECT_EQ(configs.size(), 5u * (2 + 1) * 3 * 2);
  for (const auto& c : configs) {
    EXPECT_LE(c.ddi.stride, c.ddi.window);
    EXPECT_EQ(c.gamma, 2.0);  // what the grid does not vary comes from the base
  }
  EXPECT_EQ(configs.front().ddi.window, 4);
  EXPECT_EQ(configs.front().ddi.stride, 2);
  g.stride = {};
  EXPECT_EQ(g.expand(SdsgsmOptions()).size(), 2u * 3 * 3 * 2);  // s = k
  g.stride = {-1, -2, 4};  // k, k/2 and 4: (4,4) (4,2) (8,8) (8,4)
  auto rel = g.expand(SdsgsmOptions());
  EXPECT_EQ(rel.size(), 4u * 3 * 3 * 2);
  EXPECT_EQ(rel.front().ddi.stride, 4);
  EXPECT_EQ(rel.back().ddi.stride, 4);
  EXPECT_EQ(rel.back().ddi.window, 8);
  g.rho = {1.5};
  EXPECT_TRUE(Contains(error_message([&] { g.expand(SdsgsmOptions()); }), "--rho"));
  g.rho = {0.25};
  g.map = {"hard", "smooth"};
  EXPECT_EQ(error_message([&] { g.expand(SdsgsmOptions()); }), "--map must be hard or soft (got 'smooth')");
  g.map = {"hard"};
  g.window = {4};
  g.stride = {8};
  EXPECT_TRUE(Contains(error_message([&] { g.expand(SdsgsmOptions()); }), "empty"));
}

TEST(Sweep, RulePicksTheHighestSsimAmongRowsMeetingTheAsrBound) {
  std::vector<SweepRow> rows = {row(1.0, 0.990, 0.50, true), row(0.998, 0.999, 0.10, true),
                                row(1.0, 0.995, 0.40, false), row(1.0, 0.995, 0.30, false),
                                row(0.9995, 0.992, 0.45, true)};
  EXPECT_EQ(choose_row(rows, false), 3);  // SSIM tie broken by the lower l2; row 1 misses the ASR bound
  EXPECT_EQ(choose_row(rows, true), 4);   // among the rows whose DDI costs no more than the iterations
  EXPECT_EQ(choose_row({row(0.99, 0.999, 0.1, true)}, false), -1);
  // The ASR bound on the float adversarials, after 8-bit rounding, or both.
  nlohmann::json s = {{"float", {{"asr", 1.0}}}, {"rounded_8bit", {{"asr", 0.98}}}};
  EXPECT_TRUE(meets_asr(s, 0.999, "float"));
  EXPECT_FALSE(meets_asr(s, 0.999, "8bit"));
  EXPECT_FALSE(meets_asr(s, 0.999, "both"));
  EXPECT_TRUE(meets_asr(s, 0.95, "both"));
  EXPECT_EQ(error_message([&] { meets_asr(s, 0.999, "png"); }), "--asr-basis must be float, 8bit or both (got 'png')");
  auto md = sweep_markdown(rows, "sdsgsm sweep ...");
  EXPECT_TRUE(Contains(md, "**Chosen**: k 16 s 16 (4 windows), hard map, rho 0.05, lambda 0.8, beta 0.5"));
  EXPECT_TRUE(Contains(md, "SSIM 0.9950, l2 0.300"));
  EXPECT_TRUE(Contains(md, "| 16 | 16 | 4 |"));  // the DDI cost table
  // sgsm rows have no DDI: a uniform map, no window columns, no DDI cost table.
  for (auto& r : rows) r.windows = 0;
  md = sweep_markdown(rows, "sdsgsm sweep --variant sgsm ...");
  EXPECT_TRUE(Contains(md, "**Chosen**: uniform map (no DDI), beta 0.5, step factor 1.5"));
  EXPECT_TRUE(Contains(md, "| - | - | uniform | - | - | 0.5 | 1.5 |"));
  EXPECT_FALSE(Contains(md, "DDI cost"));
}

TEST(Sweep, RunsEveryConfigurationOnSharedMaps) {
  sdsgsm_test::TinyCnn model;
  Dataset data;
  auto gen = at::detail::createCPUGenerator(3);
  auto x = torch::rand({6, 3, 16, 16}, gen) * 0.8 + 0.1;
  data.images = (x * 255).round().to(torch::kUInt8);
  data.labels = model.forward(data.images.to(torch::kFloat32) / 255).argmax(1);
  data.classes = cifar10_classes();
  SweepGrid g;
  g.window = {4, 8};
  g.lambda = {0.3, 0.6};
  SweepOptions o;
  o.run.progress = false;
  auto rows = run_sweep(model, data, g, o);
  ASSERT_EQ(rows.size(), 4u);
  // Rows of one window grid share its DDI time (computed once).
  EXPECT_EQ(rows[0].ddi_seconds, rows[1].ddi_seconds);
  EXPECT_EQ(rows[0].windows, 16);
  EXPECT_EQ(rows[2].windows, 4);
  // Each row equals a standalone attack with its settings.
  RunOptions ro;
  ro.progress = false;
  auto alone = run_attack(model, data, *make_attack("sdsgsm", AttackOptions(), rows[1].sd), ro);
  EXPECT_DOUBLE_EQ(alone.summary()["float"]["l2_mean"].get<double>(), rows[1].summary["float"]["l2_mean"].get<double>());
}

namespace {

Dataset tiny_data(sdsgsm_test::TinyCnn& model, int64_t n, uint64_t seed) {
  Dataset data;
  auto gen = at::detail::createCPUGenerator(seed);
  auto x = torch::rand({n, 3, 16, 16}, gen) * 0.8 + 0.1;
  data.images = (x * 255).round().to(torch::kUInt8);
  data.labels = model.forward(data.images.to(torch::kFloat32) / 255).argmax(1);
  data.classes = cifar10_classes();
  return data;
}

}  // namespace

TEST(Sweep, TunesABaselineOverItsStepAndDecayByTheSameRule) {
  sdsgsm_test::TinyCnn model;
  Dataset data = tiny_data(model, 6, 4);
  SweepGrid g;
  g.window = {4, 8};  // the SD-SGSM lists do not apply to a baseline
  g.step_factor = {0.5, 2.5};
  g.decay = {0.5, 1.0};
  SweepOptions o;
  o.run.progress = false;
  o.variant = "mifgsm";
  auto rows = run_sweep(model, data, g, o);
  ASSERT_EQ(rows.size(), 4u);  // step factors x decays
  EXPECT_DOUBLE_EQ(rows[0].alpha, 8.0 / 255 / 10 * 0.5);
  EXPECT_EQ(rows[1].decay, 1.0);
  EXPECT_FALSE(rows[0].early_stop);  // the baselines' default: all steps
  EXPECT_EQ(rows[0].windows, 0);
  // A row rebuilt from its JSON runs the same attack as the sweep did.
  const SweepRow back = SweepRow::from_json(rows[3].to_json());
  EXPECT_EQ(back.variant, "mifgsm");
  EXPECT_EQ(back.decay, 1.0);
  EXPECT_DOUBLE_EQ(back.alpha, rows[3].alpha);
  RunOptions ro;
  ro.progress = false;
  auto alone = run_attack(model, data, *back.make(o.attack), ro);
  EXPECT_DOUBLE_EQ(alone.summary()["float"]["l2_mean"].get<double>(), rows[3].summary["float"]["l2_mean"].get<double>());
  EXPECT_TRUE(Contains(rows[3].describe(), "mifgsm: alpha 2/255 (step factor 2.5), decay 1, all steps"));
  // Without momentum the decay list collapses to 0; early stop is taken when asked.
  o.variant = "ifgsm";
  o.attack.set_early_stop(true);
  rows = run_sweep(model, data, g, o);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].decay, 0.0);
  EXPECT_TRUE(rows[0].early_stop);
  o.variant = "deepfool";
  EXPECT_EQ(error_message([&] { run_sweep(model, data, g, o); }),
            "--variant must be sdsgsm, sd-ifgsm, sgsm, ifgsm, mifgsm, nifgsm or pgd (got 'deepfool')");
  o.variant = "ifgsm";
  o.asr_basis = "png";
  EXPECT_EQ(error_message([&] { run_sweep(model, data, g, o); }), "--asr-basis must be float, 8bit or both (got 'png')");
  EXPECT_TRUE(Contains(error_message([] { SweepRow::from_json({{"variant", "ifgsm"}}); }), "malformed"));
  EXPECT_TRUE(Contains(error_message([] { SweepRow::from_json(nlohmann::json::array()); }), "variant"));
}

TEST(Sweep, SdsgsmRowsRoundTripThroughJson) {
  SweepRow r;
  r.variant = "sdsgsm";
  r.sd.set_rho(0.25).set_lambda(0.5).set_beta(2.0).set_step_factor(1.5);
  r.sd.ddi.set_window(4).set_stride(2).set_fill("blur");
  r.decay = 0.0;
  r.alpha = 1.2 / 255;
  r.early_stop = true;
  r.early_stop_8bit = true;
  const SweepRow b = SweepRow::from_json(r.to_json());
  EXPECT_EQ(b.sd.to_json(), r.sd.to_json());
  EXPECT_TRUE(b.early_stop_8bit);
  auto a = b.make(AttackOptions());
  EXPECT_EQ(a->config()["early_stop_8bit"], true);
  EXPECT_EQ(a->config()["ddi"]["window"], 4);
  EXPECT_TRUE(Contains(error_message([] { SdsgsmOptions::from_json({{"rho", "a lot"}}); }), "'rho'"));
}

// The plans pick their attacks by registry trait (issue 21): the lists they get are the ones they
// had when they were spelled out by name, in the same order (reproduce's tables and tuned.json
// depend on it).
TEST(Sweep, PlansPickTheirAttacksByRegistryTraitInTheirOrder) {
  using V = std::vector<std::string>;
  EXPECT_EQ(attack_names(kTextbook), (V{"fgsm", "ifgsm", "mifgsm", "nifgsm", "pgd"}));
  EXPECT_EQ(attack_names(kSdFamily), (V{"sdsgsm", "sd-ifgsm", "sgsm"}));
  EXPECT_EQ(attack_names(kSdFamily | kDdiMap), (V{"sdsgsm", "sd-ifgsm"}));
  EXPECT_EQ(attack_names(kMomentum | kTextbook), (V{"mifgsm", "nifgsm"}));
  EXPECT_EQ(attack_names(kStrength), (V{"apgd-ce", "apgd-dlr"}));
  EXPECT_EQ(sweep_variants(), (V{"sdsgsm", "sd-ifgsm", "sgsm", "ifgsm", "mifgsm", "nifgsm", "pgd"}));
  EXPECT_TRUE(is_sdsgsm_family("sgsm"));
  EXPECT_FALSE(is_sdsgsm_family("mifgsm"));
  RobustOptions ro;
  EXPECT_EQ(ro.sequence(), (V{"apgd-ce", "apgd-t", "fab-t", "square"}));
  ro.norm = Norm::L2;
  EXPECT_EQ(ro.sequence(), (V{"apgd-ce", "apgd-t", "fab-t", "square"}));
  ReproduceOptions rep;
  EXPECT_EQ(rep.min_norm, (V{"deepfool", "cw", "ddn", "fmn-l2", "fmn-linf"}));
  EXPECT_EQ(rep.transfer, (V{"fgsm", "ifgsm", "mifgsm", "nifgsm", "pgd", "sdsgsm"}));
  V keys, labels, variants;
  for (const auto& item : tuning_plan()) {
    keys.push_back(item.key);
    labels.push_back(item.label);
    variants.push_back(item.variant);
  }
  EXPECT_EQ(keys, (V{"ifgsm", "mifgsm", "nifgsm", "pgd", "sgsm", "sd-ifgsm", "sdsgsm", "sdsgsm-fine"}));
  EXPECT_EQ(labels, (V{"I-FGSM", "MI-FGSM", "NI-FGSM", "PGD", "SGSM only (uniform map)", "SD only (k 16, sign)",
                       "SD-SGSM (k 16 s 16)", "SD-SGSM (k 4 s 2)"}));
  EXPECT_EQ(variants, (V{"ifgsm", "mifgsm", "nifgsm", "pgd", "sgsm", "sd-ifgsm", "sdsgsm", "sdsgsm"}));
  EXPECT_EQ(tuning_plan()[1].grid.decay, (std::vector<double>{0.5, 1.0}));  // MI-FGSM's momentum is tuned
  EXPECT_EQ(tuning_plan()[0].grid.decay, (std::vector<double>{0.0}));
  // A minimum-norm spec: any minimum-norm attack, optionally in a norm; others are refused by name.
  ReproduceOptions bad;
  bad.min_norm = {"deepfool-linf"};
  EXPECT_NO_THROW(bad.validate());
  bad.min_norm = {"pgd-l2"};
  EXPECT_TRUE(sdsgsm_test::Contains(sdsgsm_test::error_message([&] { bad.validate(); }),
                                    "--min-norm: unknown attack 'pgd-l2' (known: deepfool, cw, ddn, fmn"));
}
