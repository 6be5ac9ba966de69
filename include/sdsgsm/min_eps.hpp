// The smallest l_inf budget at which a fixed-epsilon attack fools each image, by bisection over
// [0, eps_max]: a per-sample version of "ASR against eps" (the ASR at eps is the share of images
// whose minimal eps is at most eps, when success is monotone in eps, which iterative attacks
// nearly are but do not guarantee: the eps-list curves measure it directly).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"

namespace sdsgsm {

struct MinEpsOptions {
  double eps_max = 8.0 / 255;
  int rounds = 6;  ///< bisection rounds after the check at eps_max: resolution eps_max / 2^rounds
  int64_t batch_size = 128;
  int64_t first_index = 0;  ///< sample id of data's first image (seeds random starts, as the runner does)
  torch::Device device = torch::kCPU;  ///< the model's device: each batch is moved there
};

/// Per-sample minimal eps (float64, N): the smallest bisection point at which `make(eps)` fools
/// the image (its upper bound after the last round); 0 for images the model already
/// misclassifies; +inf where even eps_max fails. Each round attacks every unresolved image once,
/// grouped by its current midpoint.
torch::Tensor minimal_eps(Classifier& model, const Dataset& data,
                          const std::function<std::unique_ptr<Attack>(double eps)>& make,
                          const MinEpsOptions& options);

/// min_eps.csv: index,label,min_eps (inf written as "inf").
std::string min_eps_csv(const torch::Tensor& index, const torch::Tensor& label, const torch::Tensor& min_eps);

/// Summary of the images the model classifies correctly: median and mean (over the finite ones,
/// also in 1/255 units), share fooled within eps_max, resolution.
nlohmann::json min_eps_summary(const torch::Tensor& min_eps, const torch::Tensor& correct, const MinEpsOptions& options);

}  // namespace sdsgsm
