#include <fmt/format.h>

#include "sdsgsm/data.hpp"

namespace sdsgsm {

torch::Tensor Dataset::float_images(int64_t start, int64_t n) const {
  return images.narrow(0, start, n).to(torch::kFloat32).div_(255.0f);
}

torch::Tensor Dataset::batch_labels(int64_t start, int64_t n) const {
  return labels.narrow(0, start, n);
}

Dataset Dataset::slice(int64_t offset, int64_t count) const {
  if (offset < 0) throw Error(fmt::format("--offset must be >= 0 (got {})", offset));
  if (offset > size()) {
    throw Error(fmt::format("--offset {} is beyond the {} images of '{}'", offset, size(), source));
  }
  if (count < 0) count = size() - offset;
  if (offset + count > size()) {
    throw Error(fmt::format("asked for {} images from offset {}, but '{}' holds {} images", count,
                            offset, source, size()));
  }
  Dataset out = *this;
  out.images = images.narrow(0, offset, count);
  out.labels = labels.narrow(0, offset, count);
  return out;
}

Dataset open_dataset(const fs::path& path, Split split, int64_t offset, int64_t count) {
  if (!fs::exists(path)) throw Error(fmt::format("data set '{}' does not exist", path.string()));
  Dataset ds;
  if (fs::is_regular_file(path)) {
    ds = read_cifar10_file(path);
  } else if (fs::exists(path / "test_batch.bin") || fs::exists(path / "data_batch_1.bin")) {
    ds = read_cifar10(path, split);
  } else {
    ds = read_image_folder(path);
  }
  return ds.slice(offset, count);
}

}  // namespace sdsgsm
