// Pictures for people: saliency sheets of SD-SGSM's decision-dependent domain.
#pragma once

#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// The "hot" colour map (black - red - yellow - white) of values in [0,1]: N x 1 x H x W -> N x 3 x H x W.
torch::Tensor hot_colormap(const torch::Tensor& values);

/// Writes a PNG with one row per image: image | sensitivity S~ (hot colour map) | S~ over the
/// image | the domain D (pixels outside D dimmed). Images N x 3 x H x W in [0,1], s_norm
/// N x 1 x H x W in [0,1], domain N x 1 x H x W bool; each pixel drawn as scale x scale.
void write_saliency_png(const torch::Tensor& images, const torch::Tensor& s_norm, const torch::Tensor& domain,
                        const fs::path& file, int scale = 4);

/// Writes one 3 x H x W image in [0,1] as a PNG (rounded to 8 bits).
void write_png(const torch::Tensor& image, const fs::path& file);

}  // namespace sdsgsm
