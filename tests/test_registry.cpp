// The attack registry (attacks.hpp): each attack's defaults, names and aliases, the family that
// decides whether it keeps the budget, `attack --help`'s list, and what an attack is kept apart
// from the plans that use it.
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "test_util.hpp"

using namespace sdsgsm;

TEST(Registry, GivesEachAttackItsOwnDefaults) {
  EXPECT_EQ(attack_info("ddn").default_steps, 100);
  EXPECT_EQ(attack_info("fmn").default_steps, 100);
  EXPECT_EQ(attack_info("fgsm").default_steps, 1);
  EXPECT_EQ(attack_info("bim").name, "ifgsm");
  EXPECT_FALSE(attack_info("cw").bounded);
  EXPECT_TRUE(attack_info("sdsgsm").bounded);
  EXPECT_EQ(attack_registry().size(), attack_names().size());
  EXPECT_TRUE(sdsgsm_test::Contains(sdsgsm_test::error_message([] { attack_info("nope"); }), "unknown attack 'nope'"));
}

TEST(Registry, BoundedFollowsTheFamilyAndHelpListsEveryAttack) {
  const std::string help = attack_help();
  for (const auto& a : attack_registry()) {
    EXPECT_EQ(a.bounded, a.family != AttackFamily::MinimumNorm) << a.name;
    EXPECT_GE(a.default_steps, 1) << a.name;
    EXPECT_TRUE(sdsgsm_test::Contains(help, "\n  " + a.name)) << a.name << " missing from:\n" << help;
    EXPECT_TRUE(sdsgsm_test::Contains(help, a.summary)) << a.name;
    for (const auto& alias : a.aliases) EXPECT_TRUE(sdsgsm_test::Contains(help, "(" + alias + ")")) << alias;
  }
  // What an attack is and which plans use it are separate bits.
  for (const auto& a : attack_registry()) EXPECT_EQ(a.traits & a.plans, 0u) << a.name;
}
