// Tests of TorchScript models through load_classifier: modules exported by PyTorch (Debian's
// python3-torch at /usr/bin/python3) must load and give the logits PyTorch computed; modules with
// the wrong output must be refused with a clear Error.
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/models.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

const char* kPython = "/usr/bin/python3";

// Exports the models into argv[1]. The fixed input is torch.linspace(0, 1, 2*3*32*32), which the
// C++ side rebuilds with the same ATen kernel; the expected logits are written as text with 17
// significant digits (exact round trip of float32 values).
const char* kExportScript = R"PY(
import sys, os
import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1]
torch.manual_seed(0)

class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)
    def forward(self, x):
        x = F.relu(self.conv((x - self.mean) / 0.25))
        x = F.avg_pool2d(x, 4)
        return self.fc(x.flatten(1))

class OneDim(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))

class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        y = self.fc(x.flatten(1))
        return y, y

class DoubleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        return self.fc(x.flatten(1)).double()

net = SmallCnn().eval()
x = torch.linspace(0, 1, 2 * 3 * 32 * 32).view(2, 3, 32, 32)
torch.jit.script(net).save(os.path.join(out, "scripted.pt"))
torch.jit.trace(net, x).save(os.path.join(out, "traced.pt"))
torch.jit.script(OneDim()).save(os.path.join(out, "onedim.pt"))
torch.jit.script(TupleOut()).save(os.path.join(out, "tuple.pt"))
dbl = DoubleOut().eval()
torch.jit.script(dbl).save(os.path.join(out, "double.pt"))
with torch.no_grad():
    for name, model in (("scripted", net), ("double", dbl)):
        y = model(x)
        with open(os.path.join(out, name + "_logits.txt"), "w") as f:
            f.write("%d %d\n" % tuple(y.shape))
            f.write(" ".join("%.17g" % v for v in y.flatten().tolist()) + "\n")
)PY";

bool python_has_torch() {
  static int cached = -1;
  if (cached < 0) {
    std::string cmd = std::string(kPython) + " -c 'import torch' >/dev/null 2>&1";
    cached = fs::exists(kPython) && std::system(cmd.c_str()) == 0 ? 1 : 0;
  }
  return cached == 1;
}

torch::Tensor read_logits(const fs::path& f) {
  std::ifstream in(f);
  int64_t rows = 0, cols = 0;
  in >> rows >> cols;
  std::vector<double> v(static_cast<size_t>(rows * cols));
  for (auto& e : v) in >> e;
  if (!in) throw std::runtime_error("cannot parse " + f.string());
  return torch::tensor(v, torch::kFloat64).view({rows, cols});
}

torch::Tensor fixed_input() { return torch::linspace(0, 1, 2 * 3 * 32 * 32).view({2, 3, 32, 32}); }

class TorchScriptModels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch (install python3-torch)";
    sdsgsm_test::write_bytes(tmp_ / "export.py", kExportScript);
    auto r = sdsgsm_test::run_shell(std::string(kPython) + " " + sdsgsm_test::shell_quote((tmp_ / "export.py").string()) +
                                        " " + sdsgsm_test::shell_quote(tmp_.path().string()),
                                    tmp_.path());
    ASSERT_EQ(r.exit_code, 0) << "exporting with PyTorch failed:\n" << r.err;
  }
  std::string model(const std::string& name) const { return (tmp_ / (name + ".pt")).string(); }
  TempDir tmp_;
};

SLOW_SUITE(TorchScriptModels);

TEST_F(TorchScriptModels, ScriptedModelGivesPyTorchLogits) {
  auto clf = sdsgsm::load_classifier(model("scripted"));
  EXPECT_EQ(clf->kind(), "torchscript");
  EXPECT_EQ(clf->name(), model("scripted"));
  EXPECT_EQ(clf->parameter_count(), 3 * 4 * 9 + 4 + 256 * 10 + 10);
  auto expected = read_logits(tmp_ / "scripted_logits.txt");
  ASSERT_EQ(expected.sizes(), (std::vector<int64_t>{2, 10}));
  torch::NoGradGuard ng;
  auto got = clf->forward(fixed_input());
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), expected, 1e-5, 1e-6))
      << "got\n" << got << "\nexpected\n" << expected;
}

TEST_F(TorchScriptModels, TracedModelGivesTheSameLogits) {
  auto clf = sdsgsm::load_classifier(model("traced"));
  EXPECT_EQ(clf->kind(), "torchscript");
  auto expected = read_logits(tmp_ / "scripted_logits.txt");
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(clf->forward(fixed_input()).to(torch::kFloat64), expected, 1e-5, 1e-6));
}

TEST_F(TorchScriptModels, ParametersFrozenButInputGradientFlows) {
  auto clf = sdsgsm::load_classifier(model("scripted"));
  auto x = fixed_input();
  EXPECT_FALSE(clf->forward(x).requires_grad());
  auto xg = x.clone().requires_grad_(true);
  auto logits = clf->forward(xg);
  ASSERT_TRUE(logits.requires_grad());
  logits.select(1, 0).sum().backward();
  ASSERT_TRUE(xg.grad().defined());
  EXPECT_GT(xg.grad().abs().sum().item<double>(), 0.0);
}

TEST_F(TorchScriptModels, DoubleLogitsAreReturnedAsFloat) {
  auto clf = sdsgsm::load_classifier(model("double"));
  torch::NoGradGuard ng;
  auto got = clf->forward(fixed_input());
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), read_logits(tmp_ / "double_logits.txt"), 1e-5, 1e-6));
}

TEST_F(TorchScriptModels, WrongOutputsAreRefused) {
  auto x = fixed_input();
  torch::NoGradGuard ng;
  auto onedim = sdsgsm::load_classifier(model("onedim"));
  std::string msg = error_message([&] { onedim->forward(x); });
  EXPECT_TRUE(Contains(msg, "logits"));
  EXPECT_TRUE(Contains(msg, "shape 2"));
  EXPECT_TRUE(Contains(msg, "onedim.pt"));

  auto tuple = sdsgsm::load_classifier(model("tuple"));
  msg = error_message([&] { tuple->forward(x); });
  EXPECT_TRUE(Contains(msg, "logits"));
  EXPECT_TRUE(Contains(msg, "tuple.pt"));
}

TEST_F(TorchScriptModels, ModelFailingOnItsInputGivesAnError) {
  auto clf = sdsgsm::load_classifier(model("scripted"));
  torch::NoGradGuard ng;
  // 16x16 images do not fit the linear layer: a one-line sdsgsm::Error, not a c10::Error.
  std::string msg = error_message([&] { clf->forward(torch::rand({2, 3, 16, 16})); });
  EXPECT_TRUE(Contains(msg, "scripted.pt"));
  EXPECT_TRUE(Contains(msg, "2 x 3 x 16 x 16"));
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST_F(TorchScriptModels, EvaluateRunsOnATorchScriptModel) {
  auto clf = sdsgsm::load_classifier(model("scripted"));
  sdsgsm::Dataset ds;
  ds.images = (fixed_input() * 255).round().to(torch::kUInt8).repeat({3, 1, 1, 1});
  ds.classes = sdsgsm::cifar10_classes();
  torch::Tensor pred;
  {
    torch::NoGradGuard ng;
    pred = clf->forward(ds.images.to(torch::kFloat32) / 255).argmax(1);
  }
  // Labels: right for the first four images, wrong for the last two.
  ds.labels = pred.clone();
  ds.labels.narrow(0, 4, 2).add_(1).remainder_(10);
  auto r = sdsgsm::evaluate(*clf, ds, 4);
  EXPECT_EQ(r.total, 6);
  EXPECT_EQ(r.correct, 4);
  EXPECT_TRUE(torch::equal(r.predictions, pred));
}

}  // namespace

// `sdsgsm export`'s library call: a zoo network (with non-trivial batch-norm statistics) as a
// TorchScript module whose logits and input gradients equal the native network's.
TEST(ExportTorchScript, ZooNetworksKeepTheirLogitsAndGradients) {
  TempDir tmp;
  for (const std::string arch : {"resnet20", "vgg7bn"}) {
    torch::manual_seed(3);
    auto net = sdsgsm::make_network(arch);
    {
      torch::NoGradGuard ng;
      for (auto& b : net->named_buffers()) {
        if (Contains(b.key(), "running_mean")) b.value().uniform_(-0.2, 0.2);
        if (Contains(b.key(), "running_var")) b.value().uniform_(0.5, 2.0);
      }
      for (auto& p : net->named_parameters()) {
        if (Contains(p.key(), "bn") || Contains(p.key(), "features")) {
          if (p.value().dim() == 1) p.value().uniform_(0.5, 1.5);
        }
      }
    }
    net->eval();
    fs::path file = tmp / (arch + "-script.pt");
    sdsgsm::export_torchscript(*net, arch, file);
    auto native = sdsgsm::wrap_network(net, arch, arch);
    auto script = sdsgsm::load_classifier(file.string());
    EXPECT_EQ(script->kind(), "torchscript");
    EXPECT_EQ(script->parameter_count(), native->parameter_count());
    torch::manual_seed(4);
    auto x = torch::rand({6, 3, 32, 32});
    auto a = native->forward(x), b = script->forward(x);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-4 * (1 + a.abs().max().item<double>())) << arch;
    auto grad_of = [&](sdsgsm::Classifier& m) {
      auto xi = x.clone().requires_grad_(true);
      auto loss = torch::nn::functional::cross_entropy(m.forward(xi), torch::arange(6) % 10);
      return torch::autograd::grad({loss}, {xi})[0];
    };
    auto ga = grad_of(*native), gb = grad_of(*script);
    EXPECT_LT((ga - gb).abs().max().item<double>(), 1e-3 * ga.abs().max().item<double>()) << arch;
  }
}

// The exported file loads in PyTorch itself (Debian's python3-torch) and names its weights after
// the network's.
SLOW_TEST(ExportTorchScript, PyTorchLoadsTheExport) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3-torch";
  TempDir tmp;
  torch::manual_seed(5);
  auto net = sdsgsm::make_network("resnet20");
  net->eval();
  sdsgsm::export_torchscript(*net, "resnet20", tmp / "r.pt");
  auto x = torch::linspace(0, 1, 2 * 3 * 32 * 32).view({2, 3, 32, 32});
  auto expected = net->forward(x);
  std::string cmd = std::string(kPython) + " -c \"import torch; m = torch.jit.load('" + (tmp / "r.pt").string() +
                    "'); assert 'stage2_0_conv1_weight' in m.state_dict(); "
                    "y = m(torch.linspace(0, 1, 2 * 3 * 32 * 32).view(2, 3, 32, 32)); "
                    "print(' '.join('%.9g' % v for v in y.flatten().tolist()))\" > " +
                    (tmp / "out.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(tmp / "out.txt");
  std::vector<double> got;
  for (double v; in >> v;) got.push_back(v);
  ASSERT_EQ(got.size(), 20u);
  for (int64_t i = 0; i < 20; ++i) {
    EXPECT_NEAR(got[static_cast<size_t>(i)], expected.flatten()[i].item<double>(), 1e-4);
  }
}

namespace {

// A network with batch norm (which freezing folds into the convolutions) exported by PyTorch,
// random 8-bit images, and 5 steps of I-FGSM written by hand the way the engine computes them
// (sum cross-entropy, eps and alpha maps in float32, clip to the box then to [0,1]), on one
// thread, on the module as torch.jit.load gives it: the reference sdsgsm's exact mode must equal.
const char* kExactScript = R"PY(
import sys, os
import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1]
torch.set_num_threads(1)
torch.manual_seed(1)

class BnCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(F.avg_pool2d(x, 4).flatten(1))

net = BnCnn()
with torch.no_grad():
    for bn in (net.bn1, net.bn2):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
net.eval()
torch.jit.script(net).save(os.path.join(out, "bn.pt"))

g = torch.Generator().manual_seed(2)
u8 = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
u8.numpy().tofile(os.path.join(out, "images.u8"))

m = torch.jit.load(os.path.join(out, "bn.pt"))
x = u8.float().div_(255.0)
with torch.no_grad():
    y = m(x).argmax(1)
y.numpy().tofile(os.path.join(out, "labels.i64"))
ones = torch.ones(6, 1, 1, 1)
eps_map, step_map = ones * (8 / 255), ones * (2 / 255)
adv = x.clone()
for _ in range(5):
    p = adv.detach().requires_grad_(True)
    loss = F.cross_entropy(m(p), y, reduction="sum")
    grad = torch.autograd.grad(loss, p)[0]
    adv = torch.min(torch.max(adv + step_map * grad.sign(), x - eps_map), x + eps_map).clamp_(0, 1)
adv.detach().numpy().tofile(os.path.join(out, "adv.f32"))
)PY";

torch::Tensor read_raw(const fs::path& f, torch::ScalarType type, std::vector<int64_t> shape) {
  std::string bytes = sdsgsm_test::read_bytes(f);
  auto t = torch::empty(shape, type);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.numel() * t.element_size())) << f;
  std::memcpy(t.data_ptr(), bytes.data(), std::min(bytes.size(), static_cast<size_t>(t.numel() * t.element_size())));
  return t;
}

}  // namespace

TEST(TorchScriptExact, IfgsmEqualsPyTorchEagerBitForBit) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch (install python3-torch)";
  TempDir tmp;
  sdsgsm_test::write_bytes(tmp / "exact.py", kExactScript);
  auto r = sdsgsm_test::run_shell(std::string(kPython) + " " + sdsgsm_test::shell_quote((tmp / "exact.py").string()) +
                                      " " + sdsgsm_test::shell_quote(tmp.path().string()),
                                  tmp.path());
  ASSERT_EQ(r.exit_code, 0) << "PyTorch's reference failed:\n" << r.err;
  auto x = read_raw(tmp / "images.u8", torch::kUInt8, {6, 3, 32, 32}).to(torch::kFloat32).div_(255.0f);
  auto y = read_raw(tmp / "labels.i64", torch::kInt64, {6});
  auto expected = read_raw(tmp / "adv.f32", torch::kFloat32, {6, 3, 32, 32});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto attack = sdsgsm::make_attack(
      "ifgsm", sdsgsm::AttackOptions().set_eps(8.0 / 255).set_alpha(2.0 / 255).set_steps(5).set_early_stop(false));
  auto adversarial = [&](const sdsgsm::ModelLoadOptions& o) {
    auto model = sdsgsm::load_classifier((tmp / "bn.pt").string(), o);
    return attack->run(*model, x, y).adversarial;
  };
  auto exact = adversarial(sdsgsm::ModelLoadOptions().set_exact(true));
  auto fast = adversarial(sdsgsm::ModelLoadOptions());
  torch::set_num_threads(threads);
  EXPECT_EQ(sdsgsm::load_classifier((tmp / "bn.pt").string(), sdsgsm::ModelLoadOptions().set_exact(true))->kind(),
            "torchscript-exact");
  EXPECT_EQ(exact.ne(expected).sum().item<int64_t>(), 0)
      << "max |difference| " << (exact - expected).abs().max().item<float>();
  EXPECT_TRUE(torch::equal(exact, expected));
  // The fast path (frozen: batch norm folded, channels-last) may differ where a gradient is near
  // zero; it stays inside the same eps box.
  EXPECT_LE((fast - x).abs().max().item<float>(), 8.0f / 255 + 1e-6f);
  RecordProperty("fast_path_values_differing", std::to_string(fast.ne(expected).sum().item<int64_t>()));
}
