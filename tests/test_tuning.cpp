// The tuning rule every attack of a comparison follows: the plan (each compared attack, both
// regimes, the fine DDI grid), its run on a tiny model and the attacks rebuilt from its choices.
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/tuning.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;

TEST(Tuning, PlanTunesEveryComparedAttackInBothRegimes) {
  const auto plan = tuning_plan();
  std::set<std::string> keys;
  for (const auto& item : plan) {
    EXPECT_TRUE(keys.insert(item.key).second) << item.key;
    EXPECT_FALSE(item.grid.step_factor.empty()) << item.key;
  }
  for (const char* k : {"ifgsm", "mifgsm", "nifgsm", "pgd", "sgsm", "sd-ifgsm", "sdsgsm", "sdsgsm-fine"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  EXPECT_EQ(tuning_regimes(), (std::vector<std::string>{"fixed", "early_stop"}));
  // The fine grid is the one where the map has many windows.
  for (const auto& item : plan) {
    if (item.key != "sdsgsm-fine") continue;
    DdiOptions fine;
    fine.set_window(item.grid.window.at(0)).set_stride(item.grid.stride.at(0));
    EXPECT_EQ(ddi_windows(32, 32, fine).size(0), 225);
  }
}

TEST(Tuning, RunsThePlanAndRebuildsTheChosenAttacks) {
  sdsgsm_test::TinyCnn model;
  Dataset data;
  auto gen = at::detail::createCPUGenerator(8);
  data.images = (torch::rand({4, 3, 16, 16}, gen) * 200 + 20).to(torch::kUInt8);
  data.labels = model.forward(data.images.to(torch::kFloat32) / 255).argmax(1);
  data.classes = cifar10_classes();
  TuningOptions o;
  o.run.progress = false;
  o.only = {"ifgsm", "sgsm"};
  o.min_asr = 0.5;
  auto t = run_tuning(model, data, o);
  for (const char* regime : {"fixed", "early_stop"}) {
    ASSERT_TRUE(t["regimes"][regime].contains("ifgsm")) << regime;
    EXPECT_FALSE(t["regimes"][regime].contains("pgd"));
    EXPECT_EQ(t["rows"][regime]["ifgsm"].size(), 6u);
  }
  const auto& row = t["regimes"]["early_stop"]["ifgsm"];
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["early_stop"], true);
  EXPECT_EQ(row["early_stop_8bit"], true);
  auto a = make_tuned_attack(row, AttackOptions());
  EXPECT_EQ(a->name(), "ifgsm");
  EXPECT_DOUBLE_EQ(a->options().alpha.value(), row["alpha"].get<double>());
  auto md = tuning_markdown(t, "sdsgsm tune ...");
  EXPECT_TRUE(Contains(md, "## Fixed iterations"));
  EXPECT_TRUE(Contains(md, "| I-FGSM | ifgsm: alpha"));
  o.only = {"cw"};
  EXPECT_TRUE(Contains(error_message([&] { run_tuning(model, data, o); }), "--only: no attack 'cw'"));
}
