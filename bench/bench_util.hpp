// Shared by the benchmarks: the default model (shipped ResNet-20 weights when present, else an
// untrained ResNet-20 with a fixed seed: the same cost either way).
#pragma once

#include <memory>

#include "sdsgsm/models.hpp"

namespace sdsgsm_bench {

inline std::shared_ptr<sdsgsm::Classifier> default_model() {
  static std::shared_ptr<sdsgsm::Classifier> model = [] {
    sdsgsm::keep_freed_memory();  // as the command-line tool does
    if (!sdsgsm::find_zoo_weights("resnet20").empty()) return sdsgsm::load_classifier("resnet20");
    torch::manual_seed(0);
    return sdsgsm::wrap_network(sdsgsm::make_network("resnet20"), "resnet20 (untrained)", "resnet20");
  }();
  return model;
}

}  // namespace sdsgsm_bench
