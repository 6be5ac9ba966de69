#include <cmath>

#include "sdsgsm/core.hpp"
#include "sdsgsm/metrics.hpp"

namespace sdsgsm {
namespace {

torch::Tensor diff64(const torch::Tensor& clean, const torch::Tensor& adv) {
  if (clean.sizes() != adv.sizes() || clean.dim() != 4) {
    throw Error("metrics need two N x C x H x W tensors of the same shape");
  }
  return adv.to(torch::kFloat64) - clean.to(torch::kFloat64);
}

/// The 1-D Gaussian taps scipy.ndimage.gaussian_filter uses for sigma 1.5, truncate 3.5.
torch::Tensor gaussian_taps() {
  const double sigma = 1.5;
  const int radius = static_cast<int>(3.5 * sigma + 0.5);
  auto taps = torch::empty({2 * radius + 1}, torch::kFloat64);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    double v = std::exp(-0.5 * i * i / (sigma * sigma));
    taps[i + radius] = v;
    sum += v;
  }
  return taps / sum;
}

/// Separable Gaussian filter over H and W, keeping only fully-inside positions ("valid").
torch::Tensor filter_valid(const torch::Tensor& img /* M x 1 x H x W */, const torch::Tensor& taps) {
  const int64_t w = taps.size(0);
  auto ky = taps.view({1, 1, w, 1});
  auto kx = taps.view({1, 1, 1, w});
  return torch::conv2d(torch::conv2d(img, ky), kx);
}

}  // namespace

torch::Tensor l2_distance(const torch::Tensor& clean, const torch::Tensor& adv) {
  return diff64(clean, adv).flatten(1).norm(2, 1);
}

torch::Tensor linf_distance(const torch::Tensor& clean, const torch::Tensor& adv) {
  return diff64(clean, adv).abs().flatten(1).amax(1);
}

torch::Tensor l0_fraction(const torch::Tensor& clean, const torch::Tensor& adv, double tol) {
  auto changed = diff64(clean, adv).abs().amax(1).gt(tol);  // N x H x W
  return changed.to(torch::kFloat64).flatten(1).mean(1);
}

torch::Tensor psnr(const torch::Tensor& clean, const torch::Tensor& adv) {
  auto mse = diff64(clean, adv).pow(2).flatten(1).mean(1).clamp_min(1e-10);
  return -10.0 * torch::log10(mse);
}

torch::Tensor ssim(const torch::Tensor& clean, const torch::Tensor& adv) {
  (void)diff64(clean, adv);
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  auto taps = gaussian_taps();
  if (h < taps.size(0) || w < taps.size(0)) {
    throw Error("SSIM needs images of at least 11 x 11 pixels");
  }
  auto a = clean.to(torch::kFloat64).reshape({n * c, 1, h, w});
  auto b = adv.to(torch::kFloat64).reshape({n * c, 1, h, w});
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto ua = filter_valid(a, taps), ub = filter_valid(b, taps);
  auto uaa = filter_valid(a * a, taps), ubb = filter_valid(b * b, taps), uab = filter_valid(a * b, taps);
  auto va = uaa - ua * ua, vb = ubb - ub * ub, vab = uab - ua * ub;
  auto s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
  return s.flatten(1).mean(1).view({n, c}).mean(1);
}

torch::Tensor quantize_8bit(const torch::Tensor& images) {
  return torch::round(images.clamp(0.0, 1.0) * 255.0) / 255.0;
}

}  // namespace sdsgsm
