// Distortion and similarity metrics between clean and adversarial images (definitions in
// docs/SD-SGSM.md, "Metrics"). All per-sample functions take N x C x H x W tensors in [0,1] and
// return an N-vector (float64).
#pragma once

#include <torch/torch.h>

namespace sdsgsm {

/// ||x' - x||_2 over all C*H*W values.
torch::Tensor l2_distance(const torch::Tensor& clean, const torch::Tensor& adv);
/// max |x' - x|.
torch::Tensor linf_distance(const torch::Tensor& clean, const torch::Tensor& adv);
/// Fraction of pixels (spatial positions) where any channel changed by more than `tol`.
torch::Tensor l0_fraction(const torch::Tensor& clean, const torch::Tensor& adv, double tol = 0.0);
/// PSNR in dB on the [0,1] scale; identical images give 100 dB (MSE floored at 1e-10).
torch::Tensor psnr(const torch::Tensor& clean, const torch::Tensor& adv);
/// Mean SSIM as scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False, data_range=1, channel_axis=0) computes it: an 11 x 11 Gaussian
/// window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, averaged over the positions
/// whose window lies inside the image, then over channels. Computed in float64.
torch::Tensor ssim(const torch::Tensor& clean, const torch::Tensor& adv);
/// Rounds to 8-bit pixel values (round half to even, as a PNG writer would store them) and back.
torch::Tensor quantize_8bit(const torch::Tensor& images);

}  // namespace sdsgsm
