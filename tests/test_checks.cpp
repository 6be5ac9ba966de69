// Tests of the evaluation checks (sdsgsm/checks.hpp) on small TorchScript models made here, and
// of how the command-line tool reports them (one-line errors; warnings on stderr and in
// metrics.json).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include "sdsgsm/checks.hpp"
#include "sdsgsm/models.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

/// A TorchScript model whose forward is `body` (x: N x 3 x 32 x 32 in [0,1]; `self.w` is a 10 x 3072
/// weight), saved in `dir`.
fs::path script_model(const fs::path& dir, const std::string& name, const std::string& body) {
  torch::jit::Module m(c10::QualifiedName("__torch__." + name));
  torch::manual_seed(0);
  m.register_parameter("w", torch::randn({10, 3 * 32 * 32}) * 0.05, false);
  m.define("def forward(self, x):\n    f = torch.flatten(x, 1)\n" + body);
  fs::path file = dir / (name + ".pt");
  m.save(file.string());
  return file;
}

const char* kLinear = "    return torch.matmul(f, self.w.t())\n";

struct Probe {
  torch::Tensor x, y;
  Probe() {
    torch::manual_seed(1);
    x = torch::rand({8, 3, 32, 32});
    y = torch::arange(8) % 10;
  }
};

TEST(Checks, AHealthyModelPasses) {
  TempDir tmp;
  Probe p;
  auto m = sdsgsm::load_classifier(script_model(tmp.path(), "linear", kLinear).string());
  torch::set_num_threads(1);
  EXPECT_TRUE(sdsgsm::check_model(*m, p.x, p.y, 10).empty());
}

TEST(Checks, NaNOrInfiniteLogitsAreAnError) {
  TempDir tmp;
  Probe p;
  auto nan = sdsgsm::load_classifier(
      script_model(tmp.path(), "nan", "    return torch.matmul(f, self.w.t()) * float('nan')\n").string());
  std::string msg = error_message([&] { sdsgsm::check_model(*nan, p.x, p.y, 10); });
  EXPECT_TRUE(Contains(msg, "NaN or infinite logits for 8 of 8 images"));
  EXPECT_TRUE(Contains(msg, "nan.pt"));
  // One bad row is enough, gradients or not.
  auto one = sdsgsm::load_classifier(
      script_model(tmp.path(), "inf1", "    y = torch.matmul(f, self.w.t())\n    y[0, 0] = float('inf')\n    return y\n")
          .string());
  msg = error_message([&] { sdsgsm::check_model(*one, p.x, p.y, 10, false); });
  EXPECT_TRUE(Contains(msg, "for 1 of 8 images"));
}

TEST(Checks, ProbabilitiesAreAWarning) {
  TempDir tmp;
  Probe p;
  torch::set_num_threads(1);
  auto m = sdsgsm::load_classifier(
      script_model(tmp.path(), "softmax", "    return torch.softmax(torch.matmul(f, self.w.t()), 1)\n").string());
  auto w = sdsgsm::check_model(*m, p.x, p.y, 10);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(Contains(w[0], "seems to return probabilities"));
  EXPECT_TRUE(Contains(w[0], "drop the final softmax"));
  // Log-probabilities are fine for cross-entropy: no warning.
  auto logp = sdsgsm::load_classifier(
      script_model(tmp.path(), "logsoftmax", "    return torch.log_softmax(torch.matmul(f, self.w.t()), 1)\n").string());
  EXPECT_TRUE(sdsgsm::check_model(*logp, p.x, p.y, 10).empty());
}

TEST(Checks, ARandomisedModelIsAWarning) {
  TempDir tmp;
  Probe p;
  torch::set_num_threads(1);
  auto m = sdsgsm::load_classifier(
      script_model(tmp.path(), "noisy", "    return torch.matmul(f, self.w.t()) + 0.1 * torch.randn(f.size(0), 10)\n")
          .string());
  auto w = sdsgsm::check_model(*m, p.x, p.y, 10);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(Contains(w[0], "different outputs for the same images"));
  EXPECT_TRUE(Contains(w[0], "EOT"));
}

TEST(Checks, ClassCountMustMatchTheData) {
  TempDir tmp;
  Probe p;
  auto five = sdsgsm::load_classifier(
      script_model(tmp.path(), "five", "    return torch.matmul(f, self.w.t())[:, :5]\n").string());
  std::string msg = error_message([&] { sdsgsm::check_model(*five, p.x, p.y, 10); });
  EXPECT_TRUE(Contains(msg, "has 5 output classes, but the data has 10 classes"));
  // Without a class count, the labels decide.
  msg = error_message([&] { sdsgsm::check_model(*five, p.x, p.y, 0); });
  EXPECT_TRUE(Contains(msg, "labels up to 7"));
  EXPECT_NO_THROW(sdsgsm::check_model(*five, p.x, p.y % 5, 0));
}

TEST(Checks, AnOutputThatIgnoresTheInputIsAnError) {
  TempDir tmp;
  Probe p;
  for (const char* body : {"    return torch.zeros(f.size(0), 10) + self.w[:, 0]\n",       // no gradient at all
                           "    return torch.matmul(f * 0.0, self.w.t()) + self.w[:, 0]\n"}) {  // zero gradient
    auto m = sdsgsm::load_classifier(script_model(tmp.path(), "constant", body).string());
    std::string msg = error_message([&] { sdsgsm::check_model(*m, p.x, p.y, 10); });
    EXPECT_TRUE(Contains(msg, "its output does not depend on its input")) << body;
    // Evaluation alone does not need gradients.
    EXPECT_NO_THROW(sdsgsm::check_model(*m, p.x, p.y, 10, false));
  }
}

TEST(Checks, NaNGradientsAreAnError) {
  TempDir tmp;
  Probe p;
  auto m = sdsgsm::load_classifier(
      script_model(tmp.path(), "nangrad",
                   "    g = torch.where(f > 2.0, torch.sqrt(f - 1.5), f)\n    return torch.matmul(g, self.w.t())\n")
          .string());
  std::string msg = error_message([&] { sdsgsm::check_model(*m, p.x, p.y, 10); });
  EXPECT_TRUE(Contains(msg, "NaN or infinite input gradient for 8 of 8 images"));
}

TEST(Checks, MoreThreadsThanCoresIsAWarning) {
  TempDir tmp;
  Probe p;
  auto m = sdsgsm::load_classifier(script_model(tmp.path(), "linear", kLinear).string());
  const int before = torch::get_num_threads();
  torch::set_num_threads(sdsgsm::hardware_threads() + 3);
  auto w = sdsgsm::check_model(*m, p.x, p.y, 10);
  torch::set_num_threads(before);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(Contains(w[0], std::to_string(sdsgsm::hardware_threads() + 3) + " threads"));
  EXPECT_TRUE(Contains(w[0], "--threads " + std::to_string(sdsgsm::hardware_threads()) + " or fewer"));
}

TEST(Checks, ZeroGradientWarningSaysHowMany) {
  EXPECT_EQ(sdsgsm::zero_gradient_warning("ifgsm", 0, 10), "");
  EXPECT_TRUE(Contains(sdsgsm::zero_gradient_warning("ifgsm", 3, 10), "ifgsm: 3 of 10 samples"));
}

// The command-line tool: a softmax model is attacked with the warning on stderr and in
// metrics.json; a NaN model and a 5-class model stop with one line and leave no output folder.
SLOW_TEST(Checks, CommandLineReportsFindings) {
  TempDir tmp;
  std::vector<int> labels;
  for (int i = 0; i < 6; ++i) labels.push_back(i % 10);
  sdsgsm_test::write_bytes(tmp / "batch.bin", sdsgsm_test::make_cifar_bytes(labels));
  auto run = [&](const fs::path& model, const std::string& out) {
    return sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q attack --attack ifgsm --model " +
                                      model.string() + " --data " + (tmp / "batch.bin").string() + " --count 6 --out " +
                                      (tmp / out).string(),
                                  tmp.path());
  };
  auto r = run(script_model(tmp.path(), "softmax", "    return torch.softmax(torch.matmul(f, self.w.t()), 1)\n"), "soft");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.err, "seems to return probabilities"));
  auto metrics = nlohmann::json::parse(sdsgsm_test::read_bytes(tmp / "soft" / "metrics.json"));
  ASSERT_GE(metrics["warnings"].size(), 1u);
  EXPECT_TRUE(Contains(metrics["warnings"][0].get<std::string>(), "seems to return probabilities"));

  for (auto [name, body, part] :
       {std::tuple<std::string, std::string, std::string>{"nan", "    return torch.matmul(f, self.w.t()) * float('nan')\n",
                                                          "NaN or infinite logits"},
        {"five", "    return torch.matmul(f, self.w.t())[:, :5]\n", "has 5 output classes, but the data has 10 classes"},
        {"constant", "    return torch.zeros(f.size(0), 10) + self.w[:, 0]\n", "does not depend on its input"}}) {
    r = run(script_model(tmp.path(), name, body), "bad-" + name);
    EXPECT_NE(r.exit_code, 0);
    auto lines = sdsgsm_test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_TRUE(Contains(lines[0], "sdsgsm: error: model '"));
    EXPECT_TRUE(Contains(lines[0], part));
    EXPECT_FALSE(fs::exists(tmp / ("bad-" + name)));
    EXPECT_FALSE(fs::exists(tmp / (".bad-" + name + ".partial")));
  }
}

}  // namespace
