#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "data/data_internal.hpp"

namespace sdsgsm {

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

namespace detail {

int64_t cifar_record_count(const fs::path& file) {
  if (!fs::is_regular_file(file)) {
    throw Error(fmt::format("CIFAR-10 file '{}' does not exist", file.string()));
  }
  const auto bytes = static_cast<int64_t>(fs::file_size(file));
  if (bytes == 0 || bytes % kCifarRecordBytes != 0) {
    throw Error(fmt::format("'{}' is not a CIFAR-10 binary batch: {} bytes is not a multiple of the "
                            "{}-byte record",
                            file.string(), bytes, kCifarRecordBytes));
  }
  return bytes / kCifarRecordBytes;
}

void parse_cifar_records(const char* records, int64_t n, const fs::path& file, int64_t first_record,
                         uint8_t* images, int64_t* labels) {
  for (int64_t i = 0; i < n; ++i) {
    const char* rec = records + i * kCifarRecordBytes;
    auto label = static_cast<unsigned char>(rec[0]);
    if (label > 9) {
      throw Error(fmt::format("'{}': record {} has label {}, outside 0..9", file.string(), first_record + i, label));
    }
    labels[i] = label;
    std::memcpy(images + i * 3072, rec + 1, 3072);
  }
}

std::vector<fs::path> cifar_split_files(const fs::path& dir, Split split) {
  std::vector<fs::path> files;
  if (split == Split::Test) {
    files.push_back(dir / "test_batch.bin");
  } else {
    for (int i = 1; i <= 5; ++i) files.push_back(dir / fmt::format("data_batch_{}.bin", i));
  }
  return files;
}

}  // namespace detail

Dataset read_cifar10_file(const fs::path& file) {
  const int64_t n = detail::cifar_record_count(file);
  std::string raw = read_file(file);
  if (static_cast<int64_t>(raw.size()) != n * kCifarRecordBytes) {
    throw Error(fmt::format("'{}' changed while being read", file.string()));
  }
  Dataset ds;
  ds.images = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  ds.labels = torch::empty({n}, torch::kInt64);
  detail::parse_cifar_records(raw.data(), n, file, 0, ds.images.data_ptr<uint8_t>(), ds.labels.data_ptr<int64_t>());
  ds.classes = cifar10_classes();
  ds.source = file.string();
  return ds;
}

Dataset read_cifar10(const fs::path& dir, Split split) {
  std::vector<torch::Tensor> imgs, labs;
  for (const auto& f : detail::cifar_split_files(dir, split)) {
    Dataset part = read_cifar10_file(f);
    imgs.push_back(part.images);
    labs.push_back(part.labels);
  }
  Dataset ds;
  ds.images = imgs.size() == 1 ? imgs[0] : torch::cat(imgs);
  ds.labels = labs.size() == 1 ? labs[0] : torch::cat(labs);
  ds.classes = cifar10_classes();
  ds.source = (dir / (split == Split::Test ? "test_batch.bin" : "data_batch_*.bin")).string();
  return ds;
}

const std::vector<std::pair<std::string, std::string>>& cifar10_md5() {
  static const std::vector<std::pair<std::string, std::string>> sums = {
      {"data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"},
      {"data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"},
      {"data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"},
      {"data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"},
      {"data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"},
      {"test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"},
  };
  return sums;
}

void verify_cifar10(const fs::path& dir) {
  for (const auto& [name, sum] : cifar10_md5()) {
    fs::path f = dir / name;
    if (!fs::is_regular_file(f)) throw Error(fmt::format("'{}' is missing", f.string()));
    std::string got = md5_file(f);
    if (got != sum) {
      throw Error(fmt::format("'{}' fails its checksum: MD5 {} instead of the published {}",
                              f.string(), got, sum));
    }
  }
}

}  // namespace sdsgsm
