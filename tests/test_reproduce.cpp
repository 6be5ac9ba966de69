// The plan of `sdsgsm reproduce` (reproduce_plan.hpp), checked without running an attack: which
// entries each model gets, in which regime, with which settings; the tuned settings applied; the
// options' checks. And the regimes' one mapping (regime.hpp).
#include <tuple>

#include <gtest/gtest.h>

#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/regime.hpp"
#include "sdsgsm/reproduce_plan.hpp"
#include "sdsgsm/reproduce_section.hpp"
#include "sdsgsm/reproduce_tables.hpp"
#include "sdsgsm/sweep.hpp"
#include "test_util.hpp"

namespace {

using namespace sdsgsm;
using V = std::vector<std::string>;

AttackPlan small_plan() {
  AttackPlan p;
  p.base.set_eps(8.0 / 255).set_steps(10);
  p.min_norm = {"deepfool", "fmn-linf"};
  p.min_norm_count = 7;
  p.min_norm_steps = 20;
  return p;
}

V ids_of(const std::vector<ReproduceEntry>& entries) {
  V ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

const ReproduceEntry& by_id(const std::vector<ReproduceEntry>& entries, const std::string& id) {
  for (const auto& e : entries) {
    if (e.id == id) return e;
  }
  throw std::runtime_error("no entry " + id);
}

TEST(ReproducePlan, AnUntunedModelGetsTheTextbookAndTheDefaultsInBothRegimesThenTheMinimumNormAttacks) {
  SensitivityCaches caches;
  const auto entries = comparison_entries(small_plan(), nlohmann::json(), caches);
  EXPECT_EQ(ids_of(entries),
            (V{"fixed/textbook/fgsm", "fixed/textbook/ifgsm", "fixed/textbook/mifgsm", "fixed/textbook/nifgsm",
               "fixed/textbook/pgd", "fixed/defaults/sdsgsm", "early_stop/textbook/ifgsm",
               "early_stop/textbook/mifgsm", "early_stop/textbook/nifgsm", "early_stop/textbook/pgd",
               "early_stop/defaults/sdsgsm", "minimum_norm/deepfool", "minimum_norm/fmn-linf"}));
  for (const auto& e : entries) {
    const std::string regime = e.regime.key;
    EXPECT_EQ(e.id.rfind(regime + "/", 0), 0u) << e.id;
    EXPECT_EQ(e.eps_curve, regime == "early_stop") << e.id;  // eps curves and minimal eps: early stop only
    EXPECT_EQ(e.count, regime == "minimum_norm" ? 7 : 0) << e.id;
  }
  EXPECT_EQ(by_id(entries, "fixed/textbook/ifgsm").label, "I-FGSM");
  EXPECT_EQ(by_id(entries, "fixed/defaults/sdsgsm").label, "SD-SGSM (defaults)");
  EXPECT_EQ(by_id(entries, "fixed/defaults/sdsgsm").group, "shipped defaults");
  EXPECT_EQ(by_id(entries, "minimum_norm/fmn-linf").attack, "fmn-linf");
  // Each factory builds its attack at the budget it is given, in its entry's regime.
  const auto fixed = by_id(entries, "fixed/textbook/pgd").make(4.0 / 255)->config();
  EXPECT_EQ(fixed["attack"], "pgd");
  EXPECT_DOUBLE_EQ(fixed["eps"].get<double>(), 4.0 / 255);
  EXPECT_EQ(fixed["steps"], 10);
  EXPECT_EQ(fixed["early_stop"], false);
  EXPECT_EQ(by_id(entries, "early_stop/textbook/pgd").make(4.0 / 255)->config()["early_stop"], true);
  const auto mn = by_id(entries, "minimum_norm/fmn-linf").make(8.0 / 255);
  EXPECT_EQ(mn->name(), "fmn");
  EXPECT_EQ(mn->config()["steps"], 20);
  // SD-SGSM's two regimes share one DDI grid's maps.
  EXPECT_EQ(caches.size(), 1u);
}

TEST(ReproducePlan, TunedRowsAreAppliedByRegimeAndKeyAndMissingOnesLeftOut) {
  SweepRow row;
  row.variant = "ifgsm";
  row.sd.step_factor = 0.5;
  row.early_stop = true;
  const nlohmann::json tuned = {{"regimes", {{"early_stop", {{"ifgsm", row.to_json()}, {"sdsgsm-fine", nullptr}}}}}};
  SensitivityCaches caches;
  const auto entries = comparison_entries(small_plan(), tuned, caches);
  V tuned_ids;
  for (const auto& e : entries) {
    if (e.id.find("/tuned/") != std::string::npos) tuned_ids.push_back(e.id);
  }
  EXPECT_EQ(tuned_ids, (V{"early_stop/tuned/ifgsm"}));  // no fixed regime in the file; sdsgsm-fine met no rule
  const auto& e = by_id(entries, "early_stop/tuned/ifgsm");
  EXPECT_EQ(e.label, "I-FGSM (tuned)");
  EXPECT_EQ(e.group, "tuned");
  EXPECT_TRUE(e.eps_curve);
  // The tuned step follows the budget: alpha = eps / steps x 0.5.
  const auto config = e.make(8.0 / 255)->config();
  EXPECT_NEAR(config["alpha"].get<double>(), 8.0 / 255 / 10 * 0.5, 1e-9);
  EXPECT_EQ(config["early_stop"], true);
}

TEST(ReproducePlan, TheStrengthTableRunsTheTextbookTheFamilyOnItsDefaultsAndApgdOnTheFirstImages) {
  SensitivityCaches caches;
  const auto entries = strength_entries(small_plan(), 9, caches);
  EXPECT_EQ(ids_of(entries),
            (V{"fixed/textbook/fgsm", "fixed/textbook/ifgsm", "fixed/textbook/mifgsm", "fixed/textbook/nifgsm",
               "fixed/textbook/pgd", "fixed/defaults/sdsgsm", "fixed/defaults/sd-ifgsm", "fixed/defaults/sgsm",
               "fixed/adaptive/apgd-ce", "fixed/adaptive/apgd-dlr"}));
  for (const auto& e : entries) {
    EXPECT_EQ(e.regime, kFixedRegime) << e.id;
    EXPECT_EQ(e.count, 9) << e.id;
    EXPECT_EQ(e.eps_curve, e.id != "fixed/adaptive/apgd-dlr") << e.id;  // APGD: the first one's curve only
  }
  // SD-SGSM's defaults stop early; in the strength table every attack runs all its steps.
  EXPECT_EQ(by_id(entries, "fixed/defaults/sdsgsm").make(8.0 / 255)->config()["early_stop"], false);
  EXPECT_EQ(by_id(entries, "fixed/adaptive/apgd-ce").make(8.0 / 255)->config()["steps"], 100);  // APGD's own
}

TEST(ReproducePlan, BadOptionsFailNamingTheirFlagBeforeAnythingRuns) {
  auto message = [](ReproduceOptions o) { return sdsgsm_test::error_message([&] { plan_reproduce(o); }); };
  ReproduceOptions o;
  o.transfer = {"apgd-ce"};
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--transfer: 'apgd-ce' has no fixed-iteration run in reproduce"));
  o = ReproduceOptions();
  o.defended = {"vgg7bn"};
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--defended: 'vgg7bn' is in --models too"));
  o = ReproduceOptions();
  o.tuned = {"a.json", "b.json", "c.json"};
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--tuned names 3 files for 2 models"));
  o = ReproduceOptions();
  o.min_norm_count = 0;
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--min-norm-count must be >= 1 (got 0)"));
  o = ReproduceOptions();
  o.eps_list = {"1/255", "x"};
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--eps-list"));
  o = ReproduceOptions();
  o.models.clear();
  EXPECT_TRUE(sdsgsm_test::Contains(message(o), "--models names no model"));
}

// The flags come from ReproduceOptions' declarations: the lists as comma-separated text (--tuned
// keeps its empty items: the zoo model's own file), the checks' messages from the flag.
TEST(ReproducePlan, OptionsAreDeclaredOnceWithTheirChecks) {
  const auto& set = ReproduceOptions::option_set();
  ReproduceOptions o;
  EXPECT_EQ(set.find("models")->get(o), "resnet20,vgg7bn");
  EXPECT_EQ(set.find("transfer")->get(o), "fgsm,ifgsm,mifgsm,nifgsm,pgd,sdsgsm");
  set.find("models")->parse(o, "a,,b");
  EXPECT_EQ(o.models, (V{"a", "b"}));
  set.find("tuned")->parse(o, ",b.json");
  EXPECT_EQ(o.tuned, (V{"", "b.json"}));
  set.find("min-norm")->parse(o, "");
  EXPECT_TRUE(o.min_norm.empty());
  set.find("out")->parse(o, "x/y");
  EXPECT_EQ(o.out, fs::path("x/y"));
  set.find("resume")->parse(o, "true");
  EXPECT_TRUE(o.resume);
  for (const auto& [word, value, error] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"frontier-count", "-1", "--frontier-count must be >= 0 (got -1)"},
           {"strength-count", "0", "--strength-count must be >= 1 (got 0)"},
           {"robust-queries", "0", "--robust-queries must be >= 1 (got 0)"},
           {"transfer-count", "0", "--transfer-count must be >= 1 (got 0)"},
           {"min-norm-steps", "0", "--min-norm-steps must be >= 1 (got 0)"},
           {"batch-size", "0", "--batch-size must be >= 1 (got 0)"},
           {"offset", "-3", "--offset must be >= 0 (got -3)"}}) {
    ReproduceOptions bad;
    set.find(word)->parse(bad, value);
    EXPECT_EQ(sdsgsm_test::error_message([&] { bad.validate(); }), error);
  }
}

TEST(ReproduceSection, TheFrontierSectionCarriesItsTableAndNamesItsFile) {
  FrontierPoint p;
  p.attack = "ifgsm";
  p.label = "I-FGSM";
  p.setting = "alpha 2/255";
  p.images = 5;
  p.scored = 4;
  p.passes = 10.5;
  p.forward_passes = 5.5;
  p.backward_passes = 5;
  p.asr_8bit = 0.75;
  p.fooled_8bit = 3;
  p.l2_8bit_median = 0.5;
  p.l2_8bit_mean = 0.6;
  p.ssim_8bit_median = 0.99;
  const std::string table = frontier_markdown({p});
  EXPECT_TRUE(sdsgsm_test::Contains(table, "| I-FGSM | alpha 2/255 | 10.5 | 5.5 / 5.0 | 75.0% (3/4) | 0.500 | 0.600 | 0.9900 |"));
  const std::string csv = frontier_csv({p});
  EXPECT_EQ(csv.substr(csv.find('\n') + 1), "ifgsm,\"I-FGSM\",10.5000,5.5000,5.0000,0.750000,3,4,0.500000,0.600000,0.990000\n");
  const std::string md = reproduce_frontier_section("/models/net.pt", 4, table);
  EXPECT_EQ(md.rfind("### The saved adversarial: 8-bit l2 against model passes (4 images)", 0), 0u);
  EXPECT_TRUE(sdsgsm_test::Contains(md, "In _models_net_pt/frontier.csv."));
  EXPECT_TRUE(sdsgsm_test::Contains(md, table));
}

TEST(ReproduceSection, TheTransferAndRobustSectionsWrapTheirTables) {
  const std::string md = reproduce_transfer_section(8, "8/255", "\nTABLES\n");
  EXPECT_EQ(md.rfind("## Transfer between models (8 images, eps 8/255)\n", 0), 0u);
  EXPECT_TRUE(sdsgsm_test::Contains(md, "\nTABLES\n"));
  EXPECT_EQ(reproduce_robust_title({"APGD-CE", "APGD-T", "FAB-T", "Square"}, 1000),
            "### Robust accuracy under the ensemble (APGD-CE, APGD-T, FAB-T, Square 1000 queries)");
  EXPECT_TRUE(sdsgsm_test::Contains(reproduce_robust_section("T", "resnet20-at", 200, "8/255", 100, 1000),
                                    "On the first 200 images at eps 8/255: APGD 100 steps"));
}

TEST(Regime, OneMappingOfKeysToWords) {
  EXPECT_EQ(std::string(regime_of("early_stop").name), "early stop");
  EXPECT_EQ(std::string(regime_of("fixed").title), "Fixed iterations");
  EXPECT_TRUE(regime_of("early_stop").early_stop);
  EXPECT_FALSE(regime_of("fixed").early_stop);
  EXPECT_EQ(kEarlyStopRegime.run_name("PGD"), "early stop: PGD");
  EXPECT_EQ(kMinimumNormRegime.run_name("ddn"), "ddn");
  EXPECT_EQ(reproduce_run_name({{"regime", "fixed"}, {"label", "I-FGSM (tuned)"}}), "fixed: I-FGSM (tuned)");
  EXPECT_EQ(reproduce_run_name({{"regime", "minimum_norm"}, {"label", "cw"}}), "cw");
  EXPECT_EQ(budget_regimes().size(), 2u);
  EXPECT_TRUE(sdsgsm_test::Contains(sdsgsm_test::error_message([] { regime_of("late"); }),
                                    "unknown regime 'late' (known: fixed, early_stop, minimum_norm)"));
}

}  // namespace
