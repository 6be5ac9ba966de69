#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "data/data_internal.hpp"
#include "sdsgsm/options.hpp"

namespace sdsgsm {

torch::Tensor Dataset::float_images(int64_t start, int64_t n) const {
  return images.narrow(0, start, n).to(torch::kFloat32).div_(255.0f);
}

torch::Tensor Dataset::batch_labels(int64_t start, int64_t n) const {
  return labels.narrow(0, start, n);
}

namespace detail {

int64_t checked_range(int64_t offset, int64_t count, int64_t total, const std::string& source) {
  struct Range {
    int64_t offset = 0;
  };
  static const OptionField<Range> first = option("offset", &Range::offset, "Index of the first image").at_least(0);
  if (std::string e = first.check(Range{offset}); !e.empty()) throw Error(e);
  if (offset > total) {
    throw Error(fmt::format("--offset {} is beyond the {} images of '{}'", offset, total, source));
  }
  if (count == -1) count = total - offset;
  if (count < -1) count = std::min(-2 - count, total - offset);  // up_to(n)
  if (offset + count > total) {
    throw Error(fmt::format("asked for {} images from offset {}, but '{}' holds {} images", count,
                            offset, source, total));
  }
  return count;
}

}  // namespace detail

Dataset Dataset::slice(int64_t offset, int64_t count) const {
  count = detail::checked_range(offset, count, size(), source);
  Dataset out = *this;
  out.images = images.narrow(0, offset, count);
  out.labels = labels.narrow(0, offset, count);
  return out;
}

Dataset open_dataset(const fs::path& path, Split split, int64_t offset, int64_t count, const DataOptions& options) {
  if (!fs::exists(path)) throw Error(fmt::format("data set '{}' does not exist", path.string()));
  const bool listed = fs::is_regular_file(path) ? detail::is_csv_list(path)
                                                : !(fs::exists(path / "test_batch.bin") || fs::exists(path / "data_batch_1.bin"));
  if (listed) {
    // Only the selected images are decoded.
    auto source = open_image_source(path, split, offset, count, options);
    Dataset ds;
    std::tie(ds.images, ds.labels) = source->read(0, source->size());
    ds.classes = source->classes();
    ds.source = source->source();
    return ds;
  }
  Dataset ds = fs::is_regular_file(path) ? read_cifar10_file(path) : read_cifar10(path, split);
  return ds.slice(offset, count);
}

}  // namespace sdsgsm
