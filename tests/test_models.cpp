// Tests of src/models: the zoo, normalisation, saving and loading, the Classifier interface.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/models.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

torch::Tensor model_inputs(int64_t n, uint64_t seed = 7) {
  torch::manual_seed(seed);
  return torch::rand({n, 3, 32, 32});
}

/// Runs a few training-mode forward passes so that batch-norm running statistics move away from
/// their initial values (a round trip must keep buffers, not only parameters).
void move_batchnorm_statistics(sdsgsm::Network& net) {
  torch::NoGradGuard ng;
  net.train();
  for (int i = 0; i < 3; ++i) net.forward(model_inputs(8, 100 + i) * 0.5 + 0.25);
  net.eval();
}

// ---------------------------------------------------------------------------------------------
// The zoo

TEST(Zoo, KnowsTheDocumentedArchitectures) {
  EXPECT_EQ(sdsgsm::zoo_architectures(),
            (std::vector<std::string>{"resnet20", "resnet32", "resnet44", "resnet56", "vgg7bn"}));
}

class ZooArch : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooArch, OutputIsNByClassesAndFinite) {
  torch::manual_seed(0);
  auto net = sdsgsm::make_network(GetParam());
  net->eval();
  torch::NoGradGuard ng;
  auto out = net->forward(model_inputs(3));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  // Different images give different logits (the network is not constant).
  EXPECT_FALSE(torch::allclose(out[0], out[1]));

  auto net7 = sdsgsm::make_network(GetParam(), 7);
  net7->eval();
  EXPECT_EQ(net7->forward(model_inputs(2)).sizes(), (std::vector<int64_t>{2, 7}));
}

TEST_P(ZooArch, NormalisationIsTheFirstModuleWithCifarStatistics) {
  auto net = sdsgsm::make_network(GetParam());
  auto children = net->named_children();
  ASSERT_GT(children.size(), 0u);
  EXPECT_EQ(children.keys().front(), "normalize");
  auto buffers = net->named_buffers(true);
  ASSERT_TRUE(buffers.contains("normalize.mean"));
  ASSERT_TRUE(buffers.contains("normalize.std"));
  EXPECT_TRUE(torch::allclose(buffers["normalize.mean"].flatten(), torch::tensor(sdsgsm::cifar10_mean())));
  EXPECT_TRUE(torch::allclose(buffers["normalize.std"].flatten(), torch::tensor(sdsgsm::cifar10_std())));

  // The network normalises its input itself: the logits of the constant mean image equal the
  // logits of a zero image once the normalisation is made the identity.
  net->eval();
  torch::NoGradGuard ng;
  auto mean_image = torch::tensor(sdsgsm::cifar10_mean()).view({1, 3, 1, 1}).expand({2, 3, 32, 32}).contiguous();
  auto with_norm = net->forward(mean_image);
  buffers["normalize.mean"].zero_();
  buffers["normalize.std"].fill_(1.0f);
  auto identity_on_zeros = net->forward(torch::zeros({2, 3, 32, 32}));
  EXPECT_TRUE(torch::allclose(with_norm, identity_on_zeros, 1e-4, 1e-5));
  // ... and that is not true of just any pair of inputs.
  EXPECT_FALSE(torch::allclose(net->forward(mean_image), identity_on_zeros, 1e-4, 1e-5));
}

TEST_P(ZooArch, SaveLoadRoundTripGivesIdenticalOutputs) {
  TempDir tmp;
  torch::manual_seed(3);
  auto net = sdsgsm::make_network(GetParam(), 10);
  move_batchnorm_statistics(*net);
  auto x = model_inputs(4);
  torch::NoGradGuard ng;
  auto before = net->forward(x);
  fs::path f = tmp / "weights.pt";
  sdsgsm::save_network(net, GetParam(), 10, f);
  ASSERT_TRUE(fs::is_regular_file(f));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "save_network left a temporary file";

  sdsgsm::LoadedNetwork loaded = sdsgsm::load_network(f);
  EXPECT_EQ(loaded.arch, GetParam());
  EXPECT_EQ(loaded.num_classes, 10);
  loaded.net->eval();
  EXPECT_TRUE(torch::equal(loaded.net->forward(x), before));
  // A freshly built network of the same architecture differs (the weights were really loaded).
  torch::manual_seed(99);
  auto fresh = sdsgsm::make_network(GetParam(), 10);
  fresh->eval();
  EXPECT_FALSE(torch::allclose(fresh->forward(x), before));
}

// In evaluation mode batch norm is folded into the convolutions and gradient-free passes run in
// channels-last layout; the folded network must compute the same function as the plain one (run
// here with trainable parameters, which keeps the unfolded graph), in every path, and must follow
// weight updates made the way optimisers make them (through .data(), which bumps no version).
TEST_P(ZooArch, FoldedEvaluationEqualsTheUnfoldedNetwork) {
  torch::manual_seed(5);
  auto net = sdsgsm::make_network(GetParam(), 10);
  move_batchnorm_statistics(*net);
  auto x = model_inputs(6, 11);
  auto unfolded = [&] {
    for (auto& p : net->parameters()) p.set_requires_grad(true);
    auto xi = x.clone().requires_grad_(true);
    auto out = net->forward(xi);
    auto g = torch::autograd::grad({out.select(1, 2).sum()}, {xi})[0];
    return std::make_pair(out.detach(), g);
  };
  auto [ref_out, ref_grad] = unfolded();
  for (auto& p : net->parameters()) p.set_requires_grad(false);
  {
    torch::NoGradGuard ng;  // folded, channels-last
    EXPECT_TRUE(torch::allclose(net->forward(x), ref_out, 1e-4, 1e-5));
  }
  auto xi = x.clone().requires_grad_(true);  // folded, default layout, input gradient
  auto out = net->forward(xi);
  EXPECT_TRUE(torch::allclose(out.detach(), ref_out, 1e-4, 1e-5));
  auto g = torch::autograd::grad({out.select(1, 2).sum()}, {xi})[0];
  // Relative l2 error: deep untrained ResNets are chaotic enough (logits ~50) that rounding-level
  // differences flip a few ReLUs and move the gradient by ~0.4%; a wrong fold moves it by O(1).
  EXPECT_LT(((g - ref_grad).norm() / ref_grad.norm()).item<double>(), 1e-2);

  // An optimiser-style in-place update of every parameter and buffer: the next folded pass sees it.
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.data().mul_(0.9).add_(0.01);
    for (auto& b : net->buffers()) {
      if (b.is_floating_point()) b.data().mul_(1.1);
    }
  }
  torch::Tensor folded;
  {
    torch::NoGradGuard ng;
    folded = net->forward(x);
  }
  auto [new_out, new_grad] = unfolded();
  EXPECT_FALSE(torch::allclose(new_out, ref_out, 1e-3, 1e-4)) << "the update must change the function";
  EXPECT_TRUE(torch::allclose(folded, new_out, 1e-4, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ZooArch, ::testing::ValuesIn(sdsgsm::zoo_architectures()),
                         [](const auto& info) { return info.param; });

TEST(Zoo, ParameterCounts) {
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("resnet20")), 269722);
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("resnet32")), 464154);
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("resnet44")), 658586);
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("resnet56")), 853018);
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("vgg7bn")), 307946);
  // Only the last layer depends on the class count: 64 x K + K for the ResNets.
  EXPECT_EQ(sdsgsm::count_parameters(*sdsgsm::make_network("resnet20", 100)), 269722 + 90 * 65);
}

TEST(Zoo, UnknownArchitectureAndBadClassCount) {
  std::string msg = error_message([] { sdsgsm::make_network("resnet18"); });
  EXPECT_TRUE(Contains(msg, "resnet18"));
  EXPECT_TRUE(Contains(msg, "resnet20"));  // lists the known ones
  msg = error_message([] { sdsgsm::make_network("resnet20", 1); });
  EXPECT_TRUE(Contains(msg, "2 classes"));
}

TEST(Normalize, MapsMeanToZeroAndMeanPlusStdToOne) {
  sdsgsm::Normalize norm(sdsgsm::cifar10_mean(), sdsgsm::cifar10_std());
  auto mean = torch::tensor(sdsgsm::cifar10_mean()).view({1, 3, 1, 1});
  auto std = torch::tensor(sdsgsm::cifar10_std()).view({1, 3, 1, 1});
  auto x = mean.expand({2, 3, 4, 4}).contiguous();
  EXPECT_TRUE(torch::allclose(norm(x), torch::zeros({2, 3, 4, 4}), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(norm(x + std), torch::ones({2, 3, 4, 4}), 0, 1e-5));
  // Channel order: a red-only change moves only channel 0.
  auto y = x.clone();
  y.select(1, 0).add_(0.1);
  auto d = norm(y) - norm(x);
  EXPECT_NEAR(d.select(1, 0).mean().item<float>(), 0.1 / sdsgsm::cifar10_std()[0], 1e-4);
  EXPECT_EQ(d.select(1, 1).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(d.select(1, 2).abs().max().item<float>(), 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Loading

TEST(LoadNetwork, MissingAndForeignFiles) {
  TempDir tmp;
  std::string msg = error_message([&] { sdsgsm::load_network(tmp / "none.pt"); });
  EXPECT_TRUE(Contains(msg, "none.pt"));
  sdsgsm_test::write_bytes(tmp / "text.pt", "this is not a model\n");
  msg = error_message([&] { sdsgsm::load_network(tmp / "text.pt"); });
  EXPECT_TRUE(Contains(msg, "text.pt"));
  EXPECT_TRUE(Contains(msg, "not a model file"));
}

class ClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    net_ = sdsgsm::make_network("resnet20");
    move_batchnorm_statistics(*net_);
    file_ = tmp_ / "model.pt";
    sdsgsm::save_network(net_, "resnet20", 10, file_);
  }
  TempDir tmp_;
  std::shared_ptr<sdsgsm::Network> net_;
  fs::path file_;
};

TEST_F(ClassifierTest, LoadClassifierOnSavedWeights) {
  auto clf = sdsgsm::load_classifier(file_.string());
  EXPECT_EQ(clf->kind(), "resnet20");
  EXPECT_EQ(clf->name(), file_.string());
  EXPECT_EQ(clf->parameter_count(), 269722);
  auto x = model_inputs(5);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(clf->forward(x), net_->forward(x)));
  EXPECT_TRUE(torch::equal((*clf)(x), net_->forward(x)));
}

TEST_F(ClassifierTest, ParametersFrozenButInputGradientFlows) {
  auto clf = sdsgsm::load_classifier(file_.string());
  auto x = model_inputs(2);
  // No gradient is tracked when the input does not ask for one: no parameter requires grad.
  EXPECT_FALSE(clf->forward(x).requires_grad());
  // In evaluation mode the output of one image does not depend on the rest of the batch.
  auto single = clf->forward(x.narrow(0, 0, 1));
  EXPECT_TRUE(torch::allclose(single, clf->forward(x).narrow(0, 0, 1), 1e-5, 1e-5));

  auto xg = x.clone().requires_grad_(true);
  auto logits = clf->forward(xg);
  ASSERT_TRUE(logits.requires_grad());
  logits.select(1, 3).sum().backward();
  ASSERT_TRUE(xg.grad().defined());
  EXPECT_EQ(xg.grad().sizes(), xg.sizes());
  EXPECT_GT(xg.grad().abs().sum().item<double>(), 0.0);
}

TEST_F(ClassifierTest, WrapNetworkFreezesAndSetsEvalMode) {
  net_->train();
  auto clf = sdsgsm::wrap_network(net_, "mine", "resnet20");
  EXPECT_EQ(clf->name(), "mine");
  EXPECT_EQ(clf->kind(), "resnet20");
  EXPECT_FALSE(net_->is_training());
  for (const auto& p : net_->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_EQ(clf->parameter_count(), 269722);
}

TEST_F(ClassifierTest, BadNamesAndFiles) {
  std::string msg = error_message([] { sdsgsm::load_classifier("nosuch"); });
  EXPECT_TRUE(Contains(msg, "nosuch"));
  EXPECT_TRUE(Contains(msg, "resnet20"));  // lists the zoo
  msg = error_message([&] { sdsgsm::load_classifier((tmp_ / "missing.pt").string()); });
  EXPECT_TRUE(Contains(msg, "missing.pt"));
  sdsgsm_test::write_bytes(tmp_ / "notes.txt", "just some text\n");
  msg = error_message([&] { sdsgsm::load_classifier((tmp_ / "notes.txt").string()); });
  EXPECT_TRUE(Contains(msg, "notes.txt"));
  EXPECT_TRUE(Contains(msg, "not a model file"));
  msg = error_message([&] { sdsgsm::load_classifier(tmp_.path().string()); });
  EXPECT_TRUE(Contains(msg, "not a file"));
}

// LibTorch's reader takes the zip64 end record whenever its locator is there, whatever the end
// record says; a check reading the end record alone once saw no entry in an archive whose zeroed
// end record hid damaged ones (found by fuzz_model; LibTorch then crashed on the damaged source).
TEST_F(ClassifierTest, EndRecordDisagreeingWithTheZip64RecordIsRefused) {
  std::string b = sdsgsm_test::read_bytes(file_);
  const size_t eocd = b.rfind(std::string("PK\x05\x06", 4));
  ASSERT_NE(eocd, std::string::npos);
  ASSERT_GE(eocd, 20u);
  ASSERT_EQ(b.substr(eocd - 20, 4), std::string("PK\x06\x07", 4)) << "LibTorch writes a zip64 locator";
  // Entry counts, directory size and offset zeroed; every entry itself intact.
  std::fill(b.begin() + static_cast<std::ptrdiff_t>(eocd) + 8, b.begin() + static_cast<std::ptrdiff_t>(eocd) + 20, '\0');
  sdsgsm_test::write_bytes(tmp_ / "zeroed.pt", b);
  std::string msg = error_message([&] { sdsgsm::load_classifier((tmp_ / "zeroed.pt").string()); });
  EXPECT_TRUE(Contains(msg, "zeroed.pt' is not a model file")) << msg;
  EXPECT_TRUE(Contains(msg, "(0 entries, directory at 0) and zip64 end record (")) << msg;
  EXPECT_TRUE(Contains(msg, "disagree")) << msg;
  msg = error_message([&] { sdsgsm::load_network(tmp_ / "zeroed.pt"); });
  EXPECT_TRUE(Contains(msg, "disagree")) << msg;
}

/// Sets an environment variable for the scope of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST_F(ClassifierTest, ZooNameResolvesThroughModelDir) {
  fs::copy_file(file_, tmp_ / "resnet20.pt");
  ScopedEnv env("SDSGSM_MODEL_DIR", tmp_.path().string());
  EXPECT_EQ(sdsgsm::find_zoo_weights("resnet20"), tmp_ / "resnet20.pt");
  auto clf = sdsgsm::load_classifier("resnet20");
  EXPECT_EQ(clf->name(), "resnet20");
  EXPECT_EQ(clf->kind(), "resnet20");
  auto x = model_inputs(2);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(clf->forward(x), net_->forward(x)));
}

TEST(ZooWeights, MissingShippedWeightsAreAnError) {
  TempDir tmp;
  ScopedEnv env("SDSGSM_MODEL_DIR", tmp.path().string());
  if (!sdsgsm::find_zoo_weights("resnet56").empty()) {
    GTEST_SKIP() << "resnet56 weights exist at " << sdsgsm::find_zoo_weights("resnet56");
  }
  std::string msg = error_message([] { sdsgsm::load_classifier("resnet56"); });
  EXPECT_TRUE(Contains(msg, "resnet56"));
  EXPECT_TRUE(Contains(msg, "sdsgsm train"));
}

}  // namespace
