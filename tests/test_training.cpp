// Tests of src/training: the learning-rate schedules, option validation, a short training run,
// checkpoints and resuming.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/training.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm::TrainOptions;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Schedules

TEST(ScheduledLr, CosineWarmsUpThenDecaysToZero) {
  TrainOptions o;
  o.set_epochs(10).set_lr(0.1).set_schedule("cosine").set_warmup_epochs(1.0);
  EXPECT_LT(sdsgsm::scheduled_lr(o, 0.0), 0.001);
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 0.5), 0.05, 1e-3);
  // Rises during the warm-up.
  double prev = -1;
  for (double e = 0; e < 1.0; e += 0.1) {
    double lr = sdsgsm::scheduled_lr(o, e);
    EXPECT_GT(lr, prev) << "epoch " << e;
    prev = lr;
  }
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 1.0), 0.1, 1e-12);  // the peak
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 5.5), 0.05, 1e-9);  // half-way through the cosine
  // Falls afterwards, to (almost) zero at the end.
  prev = 1;
  for (double e = 1.0; e <= 10.0; e += 0.25) {
    double lr = sdsgsm::scheduled_lr(o, e);
    EXPECT_LE(lr, prev + 1e-15) << "epoch " << e;
    EXPECT_GE(lr, 0.0);
    prev = lr;
  }
  EXPECT_LT(sdsgsm::scheduled_lr(o, 9.9), 0.001);
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 10.0), 0.0, 1e-12);
  // Without warm-up the first step already uses the peak rate.
  o.set_warmup_epochs(0);
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 0.0), 0.1, 1e-12);
}

TEST(ScheduledLr, OneCyclePeaksAtLrAfterThirtyPercent) {
  TrainOptions o;
  o.set_epochs(20).set_lr(0.4).set_schedule("onecycle");
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 0.0), 0.4 / 25, 1e-12);
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 6.0), 0.4, 1e-12);
  EXPECT_NEAR(sdsgsm::scheduled_lr(o, 20.0), 0.4 / 1e4, 1e-12);
  double best = 0, best_epoch = -1;
  for (double e = 0; e <= 20.0; e += 0.05) {
    double lr = sdsgsm::scheduled_lr(o, e);
    EXPECT_LE(lr, 0.4 + 1e-12);
    EXPECT_GT(lr, 0.0);
    if (lr > best) {
      best = lr;
      best_epoch = e;
    }
  }
  EXPECT_NEAR(best_epoch, 6.0, 0.051);
  EXPECT_LT(sdsgsm::scheduled_lr(o, 3.0), sdsgsm::scheduled_lr(o, 5.0));
  EXPECT_GT(sdsgsm::scheduled_lr(o, 10.0), sdsgsm::scheduled_lr(o, 15.0));
}

// ---------------------------------------------------------------------------------------------
// Options

TEST(TrainOptionsValidate, AcceptsDefaultsWithAnOutput) {
  TrainOptions o;
  o.set_out("model.pt");
  EXPECT_NO_THROW(o.validate());
  EXPECT_NO_THROW(TrainOptions(o).set_schedule("onecycle").validate());
  EXPECT_NO_THROW(TrainOptions(o).set_precision("bf16").validate());
  EXPECT_NO_THROW(TrainOptions(o).set_arch("vgg7bn").validate());
  EXPECT_NO_THROW(TrainOptions(o).set_nesterov(false).set_momentum(0).validate());
}

TEST(TrainOptionsValidate, RejectsBadValuesNamingTheFlag) {
  TrainOptions ok;
  ok.set_out("model.pt");
  struct Case {
    TrainOptions o;
    std::string flag;
  };
  std::vector<Case> cases = {
      {TrainOptions(ok).set_epochs(0), "--epochs"},
      {TrainOptions(ok).set_epochs(-3), "--epochs"},
      {TrainOptions(ok).set_batch_size(0), "--batch-size"},
      {TrainOptions(ok).set_lr(0), "--lr"},
      {TrainOptions(ok).set_lr(-0.1), "--lr"},
      {TrainOptions(ok).set_lr(std::nan("")), "--lr"},
      {TrainOptions(ok).set_momentum(1.0), "--momentum"},
      {TrainOptions(ok).set_weight_decay(-1e-4), "--weight-decay"},
      {TrainOptions(ok).set_schedule("step"), "--schedule"},
      {TrainOptions(ok).set_warmup_epochs(41), "--warmup-epochs"},
      {TrainOptions(ok).set_warmup_epochs(-1), "--warmup-epochs"},
      {TrainOptions(ok).set_pad(-1), "--pad"},
      {TrainOptions(ok).set_out(""), "--out"},
      {TrainOptions(ok).set_precision("fp16"), "--precision"},
      {TrainOptions(ok).set_momentum(0), "--nesterov"},
      {TrainOptions(ok).set_arch("resnet18"), "resnet18"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("expecting an error about " + c.flag);
    EXPECT_TRUE(Contains(error_message([&] { c.o.validate(); }), c.flag));
  }
}

TEST(TrainOptionsJson, HoldsTheResultDefiningOptions) {
  TrainOptions o;
  o.set_out("a.pt").set_seed(42).set_lr(0.05);
  auto j = o.to_json();
  EXPECT_EQ(j["seed"], 42);
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 0.05);
  EXPECT_EQ(j["arch"], "resnet20");
  EXPECT_EQ(j["precision"], "fp32");
  // Where results go and whether a bar is drawn do not change the result.
  EXPECT_FALSE(j.contains("out"));
  EXPECT_FALSE(j.contains("progress"));
  EXPECT_EQ(TrainOptions(o).set_out("b.pt").set_progress(false).to_json(), j);
  EXPECT_NE(TrainOptions(o).set_seed(43).to_json(), j);
  EXPECT_NE(TrainOptions(o).set_flip(false).to_json(), j);
}

// ---------------------------------------------------------------------------------------------
// Training runs (small: a few hundred 32x32 images, batch 64)

/// `n` images of `k` classes; class c is a distinct colour plus noise, so it can be learnt fast.
sdsgsm::Dataset colour_dataset(int64_t n, int64_t k, uint64_t seed) {
  torch::manual_seed(seed);
  sdsgsm::Dataset ds;
  ds.labels = torch::arange(n, torch::kInt64).remainder(k);
  auto palette = torch::tensor(std::vector<float>{230, 30, 30, 30, 230, 30, 30, 30, 230, 230, 230, 30}).view({4, 3});
  auto base = palette.index_select(0, ds.labels.remainder(4)).view({n, 3, 1, 1});
  auto noise = (torch::rand({n, 3, 32, 32}) - 0.5) * 120;
  ds.images = (base + noise).clamp(0, 255).round().to(torch::kUInt8);
  for (int64_t c = 0; c < k; ++c) ds.classes.push_back("class" + std::to_string(c));
  ds.source = "synthetic";
  return ds;
}

TrainOptions small_options(const fs::path& out) {
  TrainOptions o;
  o.set_arch("resnet20")
      .set_epochs(3)
      .set_batch_size(64)
      .set_lr(0.05)
      .set_warmup_epochs(0.5)
      .set_seed(1)
      .set_out(out)
      .set_progress(false);
  return o;
}

class Training : public ::testing::Test {
 protected:
  void SetUp() override { sdsgsm::configure_threads(1); }
  TempDir tmp_;
};

TEST_F(Training, ShortRunLowersTheLossAndWritesItsFiles) {
  auto train = colour_dataset(256, 4, 1);
  auto test = colour_dataset(64, 4, 2);
  auto o = small_options(tmp_ / "out" / "net.pt").set_eval_every(0);
  auto r = sdsgsm::train_network(o, train, test);

  ASSERT_EQ(r.history.size(), 3u);
  for (size_t i = 0; i < r.history.size(); ++i) {
    EXPECT_EQ(r.history[i].epoch, static_cast<int64_t>(i + 1));
    EXPECT_TRUE(std::isfinite(r.history[i].train_loss));
    EXPECT_GE(r.history[i].train_accuracy, 0.0);
    EXPECT_LE(r.history[i].train_accuracy, 1.0);
  }
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_LT(r.history.back().train_loss, 0.8 * r.history.front().train_loss)
      << "first " << r.history.front().train_loss << " last " << r.history.back().train_loss;
  // eval_every 0: the test set is evaluated after the last epoch only.
  EXPECT_EQ(r.history[0].test_accuracy, -1);
  EXPECT_EQ(r.history[1].test_accuracy, -1);
  EXPECT_GE(r.history[2].test_accuracy, 0.0);
  EXPECT_DOUBLE_EQ(r.test_accuracy, r.history[2].test_accuracy);
  EXPECT_GT(r.images_per_second, 0.0);

  // The weights: loadable, a resnet20 for 4 classes, reproducing the reported test accuracy.
  auto loaded = sdsgsm::load_network(o.out);
  EXPECT_EQ(loaded.arch, "resnet20");
  EXPECT_EQ(loaded.num_classes, 4);
  auto clf = sdsgsm::wrap_network(loaded.net, "trained", loaded.arch);
  torch::NoGradGuard ng;
  auto pred = clf->forward(test.float_images(0, test.size())).argmax(1);
  EXPECT_NEAR(pred.eq(test.labels).to(torch::kFloat64).mean().item<double>(), r.test_accuracy, 1e-9);

  // The JSON log.
  auto log = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "out" / "net.pt.json"));
  EXPECT_EQ(log["config"]["epochs"], 3);
  EXPECT_EQ(log["config"]["train_images"], 256);
  EXPECT_EQ(log["test_images"], 64);
  ASSERT_EQ(log["history"].size(), 3u);
  EXPECT_DOUBLE_EQ(log["history"][2]["train_loss"].get<double>(), r.history[2].train_loss);

  // The checkpoint folder keeps only the last epoch.
  fs::path ckpt = tmp_ / "out" / "net.pt.ckpt";
  EXPECT_TRUE(fs::is_regular_file(ckpt / "model-3.pt"));
  EXPECT_TRUE(fs::is_regular_file(ckpt / "optim-3.pt"));
  EXPECT_FALSE(fs::exists(ckpt / "model-2.pt"));
  EXPECT_FALSE(fs::exists(ckpt / "optim-1.pt"));
  auto state = nlohmann::json::parse(sdsgsm::read_file(ckpt / "state.json"));
  EXPECT_EQ(state["epochs_done"], 3);
}

TEST_F(Training, ResumeAfterAnInterruptionMatchesAStraightRun) {
  auto train = colour_dataset(128, 4, 3);
  auto test = colour_dataset(32, 4, 4);
  auto options = [&](const std::string& dir) { return small_options(tmp_ / dir / "net.pt").set_epochs(2); };

  // Run A: two epochs straight.
  auto a = sdsgsm::train_network(options("A"), train, test);
  ASSERT_EQ(a.history.size(), 2u);

  // Run B: the same options, "interrupted" after epoch 1: a folder standing where the epoch-2
  // checkpoint goes makes writing it fail.
  fs::path ckpt = tmp_ / "B" / "net.pt.ckpt";
  fs::create_directories(ckpt / "model-2.pt" / "blocker");
  std::string msg = error_message([&] { sdsgsm::train_network(options("B"), train, test); });
  EXPECT_TRUE(Contains(msg, "model-2.pt"));
  ASSERT_EQ(nlohmann::json::parse(sdsgsm::read_file(ckpt / "state.json"))["epochs_done"], 1);
  ASSERT_TRUE(fs::is_regular_file(ckpt / "model-1.pt"));
  ASSERT_FALSE(fs::exists(tmp_ / "B" / "net.pt"));
  fs::remove_all(ckpt / "model-2.pt");

  // Resuming runs epoch 2 only and reports both epochs.
  auto b = sdsgsm::train_network(options("B").set_resume(true), train, test);
  ASSERT_EQ(b.history.size(), 2u);
  EXPECT_EQ(b.history[0].epoch, 1);
  EXPECT_EQ(b.history[1].epoch, 2);
  // Epoch 1 comes from the checkpoint: exactly run A's numbers.
  EXPECT_DOUBLE_EQ(b.history[0].train_loss, a.history[0].train_loss);
  EXPECT_DOUBLE_EQ(b.history[0].test_accuracy, a.history[0].test_accuracy);
  // Epoch 2 continues with the restored weights, optimizer state (momentum) and data order.
  EXPECT_NEAR(b.history[1].train_loss, a.history[1].train_loss, 1e-4 * std::abs(a.history[1].train_loss));
  EXPECT_DOUBLE_EQ(b.history[1].lr, a.history[1].lr);
  EXPECT_DOUBLE_EQ(b.test_accuracy, a.test_accuracy);

  auto na = sdsgsm::load_network(tmp_ / "A" / "net.pt").net;
  auto nb = sdsgsm::load_network(tmp_ / "B" / "net.pt").net;
  na->eval();
  nb->eval();
  torch::NoGradGuard ng;
  auto x = test.float_images(0, 8);
  EXPECT_TRUE(torch::allclose(na->forward(x), nb->forward(x), 1e-3, 1e-4))
      << "A\n" << na->forward(x) << "\nB\n" << nb->forward(x);
  auto log = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "B" / "net.pt.json"));
  EXPECT_EQ(log["history"].size(), 2u);

  // Resuming a finished run trains nothing and keeps the result.
  auto again = sdsgsm::train_network(options("B").set_resume(true), train, test);
  EXPECT_EQ(again.history.size(), 2u);
  EXPECT_DOUBLE_EQ(again.history[1].train_loss, b.history[1].train_loss);
  auto nb2 = sdsgsm::load_network(tmp_ / "B" / "net.pt").net;
  nb2->eval();
  EXPECT_TRUE(torch::equal(nb2->forward(x), nb->forward(x)));

  // Resuming under other options is refused.
  msg = error_message(
      [&] { sdsgsm::train_network(options("B").set_resume(true).set_lr(0.02), train, test); });
  EXPECT_TRUE(Contains(msg, "other options"));
  EXPECT_TRUE(Contains(msg, ckpt.string()));
  // ... and so is resuming on another training set.
  msg = error_message([&] { sdsgsm::train_network(options("B").set_resume(true), train.slice(0, 64), test); });
  EXPECT_TRUE(Contains(msg, "other options"));
}

TEST_F(Training, ResumeWithoutCheckpointStartsFromScratchInTheGivenFolder) {
  auto train = colour_dataset(64, 2, 5);
  fs::path ckpt = tmp_ / "my-checkpoints";
  auto o = small_options(tmp_ / "m.pt").set_epochs(1).set_resume(true).set_checkpoint_dir(ckpt);
  auto r = sdsgsm::train_network(o, train, sdsgsm::Dataset{});
  ASSERT_EQ(r.history.size(), 1u);
  EXPECT_EQ(r.history[0].test_accuracy, -1);  // no test set
  EXPECT_EQ(r.test_accuracy, -1);
  EXPECT_TRUE(fs::is_regular_file(ckpt / "state.json"));
  EXPECT_TRUE(fs::is_regular_file(ckpt / "model-1.pt"));
  EXPECT_FALSE(fs::exists(tmp_ / "m.pt.ckpt"));
  EXPECT_EQ(sdsgsm::load_network(tmp_ / "m.pt").num_classes, 2);
}

TEST_F(Training, Bf16PrecisionTrains) {
  auto train = colour_dataset(64, 4, 6);
  auto o = small_options(tmp_ / "bf16.pt").set_epochs(1).set_precision("bf16").set_arch("vgg7bn");
  auto r = sdsgsm::train_network(o, train, sdsgsm::Dataset{});
  ASSERT_EQ(r.history.size(), 1u);
  EXPECT_TRUE(std::isfinite(r.history[0].train_loss));
  // The saved weights are float32 and the network runs in float32 afterwards.
  auto net = sdsgsm::load_network(tmp_ / "bf16.pt").net;
  for (const auto& p : net->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  net->eval();
  torch::NoGradGuard ng;
  EXPECT_EQ(net->forward(train.float_images(0, 2)).scalar_type(), torch::kFloat32);
}

TEST_F(Training, BadInputsFailBeforeWritingAnything) {
  auto train = colour_dataset(8, 2, 7);
  std::string msg = error_message(
      [&] { sdsgsm::train_network(small_options(tmp_ / "sub" / "m.pt").set_epochs(0), train, {}); });
  EXPECT_TRUE(Contains(msg, "--epochs"));
  msg = error_message([&] { sdsgsm::train_network(small_options(tmp_ / "sub" / "m.pt"), sdsgsm::Dataset{}, {}); });
  EXPECT_TRUE(Contains(msg, "empty"));
  EXPECT_FALSE(fs::exists(tmp_ / "sub"));
}

}  // namespace
