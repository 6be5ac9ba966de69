// Transfer between models (transfer.hpp): what a cell counts, on and off the diagonal, its table,
// and the options of `sdsgsm transfer` from their declarations.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/transfer.hpp"
#include "test_attacks_util.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::own_labelled_source;
using sdsgsm_test::TinyCnn;

// A transfer cell counts, of the images the target classifies correctly, those the attack fooled on
// the source; the diagonal is the white-box ASR over the correctly classified images.
TEST(Transfer, CellsCountWhatTheyDefine) {
  TinyCnn source(4), target(6);
  Dataset data;
  auto unused = own_labelled_source(source, 40, 3, data, 16);  // SSIM needs 11 x 11
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

// `sdsgsm transfer`'s flags come from TransferOptions' declarations, with their checks.
TEST(Transfer, OptionsAreDeclaredOnceWithTheirChecks) {
  const auto& set = TransferOptions::option_set();
  TransferOptions o;
  EXPECT_EQ(set.find("attacks")->get(o), "ifgsm,mifgsm,nifgsm,sdsgsm");
  EXPECT_EQ(set.find("models")->get(o), "resnet20,vgg7bn");
  EXPECT_NO_THROW(o.validate());
  set.find("attacks")->parse(o, "fgsm,,pgd");
  EXPECT_EQ(o.attacks, (std::vector<std::string>{"fgsm", "pgd"}));
  set.find("seed")->parse(o, "7");
  EXPECT_EQ(o.seed, 7u);
  auto fails = [&](const std::string& word, const std::string& value) {
    TransferOptions bad;
    set.find(word)->parse(bad, value);
    return error_message([&] { bad.validate(); });
  };
  EXPECT_EQ(fails("count", "0"), "--count must be >= 1 (got 0)");
  EXPECT_EQ(fails("batch-size", "0"), "--batch-size must be >= 1 (got 0)");
  EXPECT_EQ(fails("offset", "-1"), "--offset must be >= 0 (got -1)");
  EXPECT_EQ(fails("split", "val"), "--split must be test or train (got 'val')");
  EXPECT_EQ(fails("models", ","), "--models needs at least one model");
  EXPECT_EQ(fails("attacks", ""), "--attacks needs at least one attack");
  EXPECT_TRUE(Contains(fails("eps", "x"), "--eps"));
}
