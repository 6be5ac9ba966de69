// Streaming image sources (include/sdsgsm/data.hpp): the attack runner reads one batch at a time.
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "data/data_internal.hpp"
#include "sdsgsm/options.hpp"

namespace sdsgsm {
namespace {

/// CIFAR-10 binary files read by seeking to records.
class CifarSource : public ImageSource {
 public:
  CifarSource(std::vector<fs::path> files, std::string source, int64_t offset, int64_t count)
      : files_(std::move(files)), source_(std::move(source)) {
    int64_t total = 0;
    for (const auto& f : files_) {
      starts_.push_back(total);
      total += detail::cifar_record_count(f);
    }
    count_ = detail::checked_range(offset, count, total, source_);
    offset_ = offset;
  }
  int64_t size() const override { return count_; }
  std::vector<int64_t> image_shape() const override { return {3, 32, 32}; }
  const std::vector<std::string>& classes() const override { return cifar10_classes(); }
  std::string source() const override { return source_; }

  std::pair<torch::Tensor, torch::Tensor> read(int64_t start, int64_t n) const override {
    detail::checked_range(start, n, count_, source_);
    auto images = torch::empty({n, 3, 32, 32}, torch::kUInt8);
    auto labels = torch::empty({n}, torch::kInt64);
    int64_t done = 0;
    std::string buffer;
    while (done < n) {
      const int64_t global = offset_ + start + done;
      size_t f = files_.size() - 1;
      while (starts_[f] > global) --f;
      const int64_t record = global - starts_[f];
      const int64_t end = f + 1 < files_.size() ? starts_[f + 1] : std::numeric_limits<int64_t>::max();
      const int64_t take = std::min(n - done, end - global);
      std::ifstream in(files_[f], std::ios::binary);
      buffer.resize(static_cast<size_t>(take * kCifarRecordBytes));
      in.seekg(record * kCifarRecordBytes);
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (!in) throw Error(fmt::format("cannot read records {}..{} of '{}'", record, record + take - 1, files_[f].string()));
      detail::parse_cifar_records(buffer.data(), take, files_[f], record, images[done].data_ptr<uint8_t>(),
                                  labels.data_ptr<int64_t>() + done);
      done += take;
    }
    return {images, labels};
  }

 private:
  std::vector<fs::path> files_;
  std::vector<int64_t> starts_;  ///< index of each file's first record
  std::string source_;
  int64_t offset_ = 0, count_ = 0;
};

/// An image folder or CSV list: listed at once, decoded batch by batch.
class ListedSource : public ImageSource {
 public:
  ListedSource(detail::ImageFolderListing listing, std::string source, int64_t offset, int64_t count,
               const DataOptions& options)
      : listing_(std::move(listing)), source_(std::move(source)), options_(options) {
    count_ = detail::checked_range(offset, count, static_cast<int64_t>(listing_.files.size()), source_);
    offset_ = offset;
    const auto& f = listing_.files[static_cast<size_t>(offset_ < static_cast<int64_t>(listing_.files.size()) ? offset_ : 0)];
    shape_ = read_image(f, options_).sizes().vec();
  }
  int64_t size() const override { return count_; }
  std::vector<int64_t> image_shape() const override { return shape_; }
  const std::vector<std::string>& classes() const override { return listing_.classes; }
  std::string source() const override { return source_; }

  std::pair<torch::Tensor, torch::Tensor> read(int64_t start, int64_t n) const override {
    detail::checked_range(start, n, count_, source_);
    auto images = torch::empty({n, shape_[0], shape_[1], shape_[2]}, torch::kUInt8);
    auto labels = torch::empty({n}, torch::kInt64);
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(offset_ + start + i);
      auto img = read_image(listing_.files[k], options_);
      detail::check_image_shape(listing_.files[k], img, shape_, options_);
      images[i].copy_(img);
      labels[i] = listing_.labels[k];
    }
    return {images, labels};
  }

 private:
  detail::ImageFolderListing listing_;
  std::string source_;
  DataOptions options_;
  int64_t offset_ = 0, count_ = 0;
  std::vector<int64_t> shape_;
};

class MemorySource : public ImageSource {
 public:
  explicit MemorySource(const Dataset& d) : data_(d) {}
  int64_t size() const override { return data_.size(); }
  std::vector<int64_t> image_shape() const override {
    return {data_.images.size(1), data_.images.size(2), data_.images.size(3)};
  }
  const std::vector<std::string>& classes() const override { return data_.classes; }
  std::string source() const override { return data_.source; }
  std::pair<torch::Tensor, torch::Tensor> read(int64_t start, int64_t n) const override {
    detail::checked_range(start, n, size(), data_.source);
    return {data_.images.narrow(0, start, n), data_.labels.narrow(0, start, n)};
  }

 private:
  Dataset data_;
};

class FloatSource : public ImageSource {
 public:
  FloatSource(torch::Tensor images, torch::Tensor labels, std::string what)
      : images_(std::move(images)), labels_(std::move(labels)), what_(std::move(what)) {}
  int64_t size() const override { return labels_.size(0); }
  std::vector<int64_t> image_shape() const override { return {images_.size(1), images_.size(2), images_.size(3)}; }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string source() const override { return what_; }
  std::pair<torch::Tensor, torch::Tensor> read(int64_t start, int64_t n) const override {
    auto [x, y] = read_float(start, n);
    return {x.mul(255.0f).round_().to(torch::kUInt8), y};  // round half to even, as a PNG writer
  }
  std::pair<torch::Tensor, torch::Tensor> read_float(int64_t start, int64_t n) const override {
    detail::checked_range(start, n, size(), what_);
    return {images_.narrow(0, start, n), labels_.narrow(0, start, n)};
  }

 private:
  torch::Tensor images_, labels_;
  std::string what_;
  std::vector<std::string> classes_;
};

std::string shape_text(const torch::Tensor& t) {
  std::string s;
  for (auto d : t.sizes()) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s.empty() ? "a scalar" : s;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> ImageSource::read_float(int64_t start, int64_t n) const {
  auto [images, labels] = read(start, n);
  return {images.to(torch::kFloat32).div_(255.0f), labels};
}

torch::Tensor ImageSource::float_images(int64_t start, int64_t n) const { return read_float(start, n).first; }

std::unique_ptr<ImageSource> open_image_source(const fs::path& path, Split split, int64_t offset, int64_t count,
                                               const DataOptions& options) {
  static const OptionSet<DataOptions> sizes(
      "data", {
                  option("resize", &DataOptions::resize, "Short side of the scaled image").at_least(0),
                  option("crop", &DataOptions::crop, "Side of the centre crop").at_least(0),
              });
  sizes.validate(options);
  if (!fs::exists(path)) throw Error(fmt::format("data set '{}' does not exist", path.string()));
  if (fs::is_regular_file(path) && detail::is_csv_list(path)) {
    return std::make_unique<ListedSource>(detail::list_csv(path, options), path.string(), offset, count, options);
  }
  if (fs::is_regular_file(path)) return std::make_unique<CifarSource>(std::vector<fs::path>{path}, path.string(), offset, count);
  if (fs::exists(path / "test_batch.bin") || fs::exists(path / "data_batch_1.bin")) {
    auto files = detail::cifar_split_files(path, split);
    std::string source = (path / (split == Split::Test ? "test_batch.bin" : "data_batch_*.bin")).string();
    return std::make_unique<CifarSource>(files, source, offset, count);
  }
  return std::make_unique<ListedSource>(detail::list_image_folder(path, options), path.string(), offset, count, options);
}

namespace detail {
std::unique_ptr<ImageSource> listed_source(ImageFolderListing listing, std::string source, int64_t offset, int64_t count,
                                           const DataOptions& options) {
  return std::make_unique<ListedSource>(std::move(listing), std::move(source), offset, count, options);
}
}  // namespace detail

std::unique_ptr<ImageSource> memory_source(const Dataset& data) { return std::make_unique<MemorySource>(data); }

std::unique_ptr<ImageSource> float_source(const torch::Tensor& images, const torch::Tensor& labels,
                                          const std::string& what) {
  if (!images.defined() || images.dim() != 4 || !images.is_floating_point()) {
    throw Error(fmt::format("{}: images must be an N x C x H x W floating-point tensor (got {}{})", what,
                            images.defined() ? shape_text(images) : "none",
                            images.defined() ? fmt::format(" of {}", c10::toString(images.scalar_type())) : ""));
  }
  if (images.size(0) == 0) throw Error(fmt::format("{}: no images to attack", what));
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != images.size(0) || labels.is_floating_point() ||
      labels.scalar_type() == torch::kBool) {
    throw Error(fmt::format("{}: labels must be an integer tensor of {} values, one per image (got {}{})", what,
                            images.size(0), labels.defined() ? shape_text(labels) : "none",
                            labels.defined() ? fmt::format(" of {}", c10::toString(labels.scalar_type())) : ""));
  }
  auto x = images.to(torch::kFloat32).contiguous();
  if (!torch::isfinite(x).all().item<bool>() || x.min().item<float>() < 0.0f || x.max().item<float>() > 1.0f) {
    throw Error(fmt::format("{}: images must lie in [0,1] (got values from {} to {})", what,
                            x.min().item<float>(), x.max().item<float>()));
  }
  auto y = labels.to(torch::kInt64).contiguous();
  if (y.min().item<int64_t>() < 0) {
    throw Error(fmt::format("{}: labels must be >= 0 (got {})", what, y.min().item<int64_t>()));
  }
  return std::make_unique<FloatSource>(x, y, what);
}

}  // namespace sdsgsm
