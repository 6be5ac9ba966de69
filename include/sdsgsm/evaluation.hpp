// Clean-accuracy evaluation of a classifier on a data set.
#pragma once

#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"

namespace sdsgsm {

struct EvalResult {
  int64_t total = 0;
  int64_t correct = 0;
  torch::Tensor predictions;  ///< int64, N
  torch::Tensor confusion;    ///< int64, K x K: row = true label, column = prediction
  std::vector<std::string> classes;
  double seconds = 0;

  double accuracy() const { return total ? static_cast<double>(correct) / total : 0.0; }
  std::vector<double> per_class_accuracy() const;
  nlohmann::json to_json() const;
};

/// Predicts every image of `data` in batches (no gradients) and tallies accuracy. The batches go to
/// `device`, where the model must already be.
EvalResult evaluate(Classifier& model, const Dataset& data, int64_t batch_size = 128, bool progress = false,
                    const torch::Device& device = torch::kCPU);

/// Predicted labels for a float batch, without gradients.
torch::Tensor predict(Classifier& model, const torch::Tensor& images);

}  // namespace sdsgsm
