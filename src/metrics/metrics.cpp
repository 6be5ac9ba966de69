#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/metrics.hpp"

namespace sdsgsm {
namespace {

void check_pair(const torch::Tensor& clean, const torch::Tensor& adv) {
  if (clean.sizes() != adv.sizes() || clean.dim() != 4) {
    throw Error("metrics need two N x C x H x W tensors of the same shape");
  }
}

torch::Tensor diff64(const torch::Tensor& clean, const torch::Tensor& adv) {
  check_pair(clean, adv);
  return adv.to(torch::kFloat64) - clean.to(torch::kFloat64);
}

/// The 1-D Gaussian taps scipy.ndimage.gaussian_filter uses for sigma 1.5, truncate 3.5.
std::vector<double> gaussian_taps() {
  const double sigma = 1.5;
  const int radius = static_cast<int>(3.5 * sigma + 0.5);
  std::vector<double> taps(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    double v = std::exp(-0.5 * i * i / (sigma * sigma));
    taps[i + radius] = v;
    sum += v;
  }
  for (double& t : taps) t /= sum;
  return taps;
}

/// Mean SSIM of one H x W plane pair (float64, row-major). The separable Gaussian filter runs
/// over H (into one row of the five filtered moments at a time) and then over W, keeping only
/// fully-inside positions ("valid"); the working set is five rows, so it stays in cache at any
/// image size.
double ssim_plane(const double* a, const double* b, int64_t h, int64_t w, const std::vector<double>& taps,
                  std::vector<double>& buf) {
  const int64_t k = static_cast<int64_t>(taps.size()), oh = h - k + 1, ow = w - k + 1;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  buf.assign(static_cast<size_t>(5 * w), 0.0);
  double* ra = buf.data();
  double* rb = ra + w;
  double* raa = rb + w;
  double* rbb = raa + w;
  double* rab = rbb + w;
  double total = 0;
  for (int64_t i = 0; i < oh; ++i) {
    std::fill(buf.begin(), buf.end(), 0.0);
    for (int64_t t = 0; t < k; ++t) {
      const double g = taps[static_cast<size_t>(t)];
      const double* pa = a + (i + t) * w;
      const double* pb = b + (i + t) * w;
      for (int64_t j = 0; j < w; ++j) {
        const double va = pa[j], vb = pb[j];
        ra[j] += g * va;
        rb[j] += g * vb;
        raa[j] += g * (va * va);
        rbb[j] += g * (vb * vb);
        rab[j] += g * (va * vb);
      }
    }
    for (int64_t j = 0; j < ow; ++j) {
      double ua = 0, ub = 0, uaa = 0, ubb = 0, uab = 0;
      for (int64_t t = 0; t < k; ++t) {
        const double g = taps[static_cast<size_t>(t)];
        ua += g * ra[j + t];
        ub += g * rb[j + t];
        uaa += g * raa[j + t];
        ubb += g * rbb[j + t];
        uab += g * rab[j + t];
      }
      const double va = uaa - ua * ua, vb = ubb - ub * ub, vab = uab - ua * ub;
      total += ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
    }
  }
  return total / static_cast<double>(oh * ow);
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
  check_pair(clean, adv);
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  const std::vector<double> taps = gaussian_taps();
  const auto k = static_cast<int64_t>(taps.size());
  if (h < k || w < k) throw Error("SSIM needs images of at least 11 x 11 pixels");
  // Plane by plane (image x channel) in float64: memory O(W) per thread beyond the inputs, and
  // no im2col copies (a float64 conv2d here costs 15x a 224 x 224 attack).
  auto a = clean.to(torch::kCPU, torch::kFloat64).contiguous();
  auto b = adv.to(torch::kCPU, torch::kFloat64).contiguous();
  auto per_plane = torch::empty({n * c}, torch::kFloat64);
  const double* pa = a.data_ptr<double>();
  const double* pb = b.data_ptr<double>();
  double* out = per_plane.data_ptr<double>();
  at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> buf;
    for (int64_t p = begin; p < end; ++p) out[p] = ssim_plane(pa + p * h * w, pb + p * h * w, h, w, taps, buf);
  });
  return per_plane.view({n, c}).mean(1);
}

torch::Tensor quantize_8bit(const torch::Tensor& images) {
  return torch::round(images.clamp(0.0, 1.0) * 255.0) / 255.0;
}

}  // namespace sdsgsm
