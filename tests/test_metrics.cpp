// Metrics: closed forms, 8-bit rounding, and SSIM against scikit-image as an oracle.
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sdsgsm/data.hpp"
#include "sdsgsm/metrics.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::TempDir;

namespace {

bool python_has_skimage() {
  return std::system("/usr/bin/python3 -c 'import skimage.metrics' >/dev/null 2>&1") == 0;
}

/// SSIM per image from scikit-image.
std::vector<double> skimage_ssim(const torch::Tensor& a, const torch::Tensor& b) {
  TempDir dir;
  auto write = [](const torch::Tensor& t, const fs::path& p) {
    auto d = t.to(torch::kFloat64).contiguous();
    sdsgsm_test::write_bytes(p, std::string(reinterpret_cast<const char*>(d.data_ptr<double>()),
                                            static_cast<size_t>(d.numel()) * sizeof(double)));
  };
  write(a, dir / "a.raw");
  write(b, dir / "b.raw");
  std::string cmd = "/usr/bin/python3 " SDSGSM_SOURCE_DIR "/tests/ssim_oracle.py " + (dir / "a.raw").string() + " " +
                    (dir / "b.raw").string();
  for (auto s : a.sizes()) cmd += " " + std::to_string(s);
  auto r = sdsgsm_test::run_shell(cmd, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<double> out;
  for (const auto& line : sdsgsm_test::split_lines(r.out)) out.push_back(std::stod(line));
  return out;
}

/// SSIM as sdsgsm computed it before the plane-by-plane filter: float64 conv2d along H, then W.
torch::Tensor ssim_by_conv2d(const torch::Tensor& clean, const torch::Tensor& adv) {
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  std::vector<double> v;
  for (int i = -5; i <= 5; ++i) v.push_back(std::exp(-0.5 * i * i / (1.5 * 1.5)));
  auto taps = torch::tensor(v, torch::kFloat64);
  taps = taps / taps.sum();
  auto f = [&](const torch::Tensor& x) { return torch::conv2d(torch::conv2d(x, taps.view({1, 1, 11, 1})), taps.view({1, 1, 1, 11})); };
  auto a = clean.to(torch::kFloat64).reshape({n * c, 1, h, w}), b = adv.to(torch::kFloat64).reshape({n * c, 1, h, w});
  auto ua = f(a), ub = f(b), va = f(a * a) - ua * ua, vb = f(b * b) - ub * ub, vab = f(a * b) - ua * ub;
  auto s = ((2 * ua * ub + 1e-4) * (2 * vab + 9e-4)) / ((ua * ua + ub * ub + 1e-4) * (va + vb + 9e-4));
  return s.flatten(1).mean(1).view({n, c}).mean(1);
}

}  // namespace

TEST(Metrics, DistancesHaveTheirClosedForms) {
  auto x = torch::zeros({2, 3, 4, 4});
  auto y = x.clone();
  y[0][0][1][2] = 0.5;
  y[0][2][1][2] = -0.25;
  y[0][1][3][3] = 0.1;
  auto l2 = l2_distance(x, y);
  EXPECT_NEAR(l2[0].item<double>(), std::sqrt(0.25 + 0.0625 + 0.01), 1e-7);
  EXPECT_EQ(l2[1].item<double>(), 0.0);
  EXPECT_NEAR(linf_distance(x, y)[0].item<double>(), 0.5, 1e-7);
  EXPECT_NEAR(l0_fraction(x, y)[0].item<double>(), 2.0 / 16, 1e-12);  // two pixel positions changed
  EXPECT_EQ(l0_fraction(x, y)[1].item<double>(), 0.0);
  double mse = (0.25 + 0.0625 + 0.01) / 48;
  EXPECT_NEAR(psnr(x, y)[0].item<double>(), -10 * std::log10(mse), 1e-6);
  EXPECT_NEAR(psnr(x, y)[1].item<double>(), 100.0, 1e-9);
}

TEST(Metrics, QuantizeRoundsToNearestEightBitValue) {
  auto v = torch::tensor({0.0f, 1.0f, 0.4f / 255, 0.6f / 255, 254.7f / 255, 1.2f, -0.1f}).view({1, 1, 1, 7});
  auto q = quantize_8bit(v) * 255;
  std::vector<float> expected = {0, 255, 0, 1, 255, 255, 0};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(q[0][0][0][i].item<float>(), expected[i], 1e-4) << i;
}

TEST(Metrics, SsimOfIdenticalImagesIsOne) {
  auto gen = at::detail::createCPUGenerator(1);
  auto x = torch::rand({3, 3, 32, 32}, gen);
  auto s = ssim(x, x);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(s[i].item<double>(), 1.0, 1e-12);
  EXPECT_THROW(ssim(torch::rand({1, 3, 8, 8}), torch::rand({1, 3, 8, 8})), Error);
  EXPECT_THROW(ssim(torch::rand({1, 3, 16, 16}), torch::rand({1, 3, 16, 17})), Error);
}

SLOW_TEST(Metrics, SsimEqualsScikitImageOnRandomPairs) {
  if (!python_has_skimage()) GTEST_SKIP() << "/usr/bin/python3 without scikit-image (Debian python3-skimage)";
  auto gen = at::detail::createCPUGenerator(7);
  auto a = torch::rand({4, 3, 32, 32}, gen, torch::kFloat64);
  auto noise = torch::randn({4, 3, 32, 32}, gen, torch::kFloat64);
  auto b = (a + noise * torch::tensor({0.01, 0.05, 0.2, 0.5}, torch::kFloat64).view({4, 1, 1, 1})).clamp(0, 1);
  // Also a non-square, single-channel-sized pair.
  auto c = torch::rand({2, 3, 20, 27}, gen, torch::kFloat64);
  auto d = (c * 0.8 + 0.1).clamp(0, 1);
  for (auto [x, y] : {std::make_pair(a, b), std::make_pair(c, d)}) {
    auto ours = ssim(x, y);
    auto ref = skimage_ssim(x, y);
    ASSERT_EQ(static_cast<int64_t>(ref.size()), x.size(0));
    for (int64_t i = 0; i < x.size(0); ++i) EXPECT_NEAR(ours[i].item<double>(), ref[i], 1e-5) << i;
  }
}

SLOW_TEST(Metrics, SsimEqualsScikitImageOnRealImages) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (!python_has_skimage()) GTEST_SKIP() << "/usr/bin/python3 without scikit-image (Debian python3-skimage)";
  Dataset d = read_cifar10(sdsgsm_test::real_cifar_dir(), Split::Test);
  auto clean = d.float_images(0, 6);
  auto gen = at::detail::createCPUGenerator(3);
  // An 8/255 sign perturbation, rounded to 8 bits, as an attack would leave it; and another image.
  auto adv = quantize_8bit(clean + (8.0f / 255) * torch::randn(clean.sizes(), gen).sign());
  auto other = d.float_images(6, 6);
  for (const auto& y : {adv, other}) {
    auto ours = ssim(clean, y);
    auto ref = skimage_ssim(clean, y);
    ASSERT_EQ(ref.size(), 6u);
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(ours[i].item<double>(), ref[i], 1e-5) << i;
  }
}

SLOW_TEST(Metrics, SsimEqualsScikitImageAt224) {
  // At a model's input size (224 x 224): noise, and a smooth image (a 32 x 32 one upscaled, as
  // a user's upscaled CIFAR-10 JPEGs are) under an 8-bit rounded sign perturbation.
  auto gen = at::detail::createCPUGenerator(11);
  auto a = torch::rand({2, 3, 224, 224}, gen, torch::kFloat64);
  auto b = (a + 0.05 * torch::randn({2, 3, 224, 224}, gen, torch::kFloat64)).clamp(0, 1);
  auto small = torch::rand({2, 3, 32, 32}, gen, torch::kFloat32);
  auto smooth = torch::upsample_bilinear2d(small, {224, 224}, false).clamp(0, 1);
  auto smooth_adv = quantize_8bit(smooth + (8.0f / 255) * torch::randn(smooth.sizes(), gen).sign());
  for (auto [x, y] : {std::make_pair(a, b), std::make_pair(smooth, smooth_adv)}) {
    auto ours = ssim(x, y);
    // The same definition as the float64 convolutions it replaced, to float64 rounding.
    auto before = ssim_by_conv2d(x, y);
    for (int64_t i = 0; i < x.size(0); ++i) EXPECT_NEAR(ours[i].item<double>(), before[i].item<double>(), 1e-12) << i;
    if (!python_has_skimage()) continue;
    auto ref = skimage_ssim(x, y);
    ASSERT_EQ(static_cast<int64_t>(ref.size()), x.size(0));
    for (int64_t i = 0; i < x.size(0); ++i) EXPECT_NEAR(ours[i].item<double>(), ref[i], 1e-5) << i;
  }
}

TEST(Metrics, SsimMatchesTheConvolutionDefinitionAt32) {
  auto gen = at::detail::createCPUGenerator(5);
  auto a = torch::rand({8, 3, 32, 32}, gen, torch::kFloat32);
  auto b = quantize_8bit(a + (8.0f / 255) * torch::randn(a.sizes(), gen).sign());
  auto ours = ssim(a, b), before = ssim_by_conv2d(a, b);
  for (int64_t i = 0; i < 8; ++i) EXPECT_NEAR(ours[i].item<double>(), before[i].item<double>(), 1e-13) << i;
}
