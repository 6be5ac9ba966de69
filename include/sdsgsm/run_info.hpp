// A run's description in metrics.json, robust.json and reproduce's runs: which model, which images,
// which version. One builder for every command; what a resume must match starts from it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"

namespace sdsgsm {

/// {"model", "model_kind", "data", "split", "offset", "count", "batch_size", "version"}: `data`'s
/// source and size, the split's name as given ("test", "train").
nlohmann::json run_info(const Classifier& model, const ImageSource& data, const std::string& split, int64_t offset,
                        int64_t batch_size);

}  // namespace sdsgsm
