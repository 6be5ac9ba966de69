// The run-info JSON (run_info.hpp).
#include "sdsgsm/run_info.hpp"

#include "sdsgsm/core.hpp"

namespace sdsgsm {

nlohmann::json run_info(const Classifier& model, const ImageSource& data, const std::string& split, int64_t offset,
                        int64_t batch_size) {
  return {{"model", model.name()}, {"model_kind", model.kind()}, {"data", data.source()},
          {"split", split},        {"offset", offset},           {"count", data.size()},
          {"batch_size", batch_size}, {"version", version_string()}};
}

}  // namespace sdsgsm
