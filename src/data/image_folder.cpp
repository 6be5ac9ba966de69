#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <tuple>

#include <fmt/format.h>
#include <stb_image.h>

#include "data/data_internal.hpp"

namespace sdsgsm {
namespace detail {

namespace {
std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext;
}
}  // namespace

bool is_image_file(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool is_csv_list(const fs::path& p) { return lower_extension(p) == ".csv"; }

ImageFolderListing list_image_folder(const fs::path& dir, const DataOptions& options) {
  if (!fs::is_directory(dir)) throw Error(fmt::format("image folder '{}' does not exist", dir.string()));
  ImageFolderListing out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) out.classes.push_back(entry.path().filename().string());
  }
  std::sort(out.classes.begin(), out.classes.end());
  if (out.classes.empty()) {
    throw Error(fmt::format("'{}' is neither a CIFAR-10 binary folder nor an image folder "
                            "(class_name/*.png)",
                            dir.string()));
  }
  for (size_t c = 0; c < out.classes.size(); ++c) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir / out.classes[c])) {
      if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      out.files.push_back(f);
      out.labels.push_back(static_cast<int64_t>(c));
    }
  }
  if (out.files.empty()) throw Error(fmt::format("image folder '{}' holds no images", dir.string()));
  const auto folders = out.classes;
  label_folders(out, dir, options, folders);
  return out;
}

namespace {

// A PNG's chunks, walked before stb_image sees them: each must fit in the file. stb_image believes
// a chunk's length and reserves it first (a 118-byte file claiming a 688 MB IDAT cost 0.5 s under
// the fuzzer's sanitizers: fuzz_image).
void check_png_chunks(const fs::path& file, const std::string& data) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (data.compare(0, 8, kSignature, 8) != 0) return;
  size_t at = 8;
  while (at + 8 <= data.size()) {
    const auto* b = reinterpret_cast<const unsigned char*>(data.data()) + at;
    const uint64_t length = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | b[3];
    std::string type = data.substr(at + 4, 4);
    for (char& c : type) c = std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    const size_t left = data.size() - at - 8;
    if (length + 4 > left) {
      throw Error(fmt::format("image '{}' is a damaged PNG: its chunk '{}' claims {} bytes, the file has {} left",
                              file.string(), type, length, left));
    }
    if (type == "IEND") return;
    at += 12 + length;
  }
}

// Only the formats an image folder holds reach stb_image, which otherwise guesses among a dozen from
// the bytes: its PNM header reader overflows an int on a long number ("P6 777777777777", found by
// fuzz_image under UndefinedBehaviorSanitizer).
void check_image_format(const fs::path& file, const std::string& data) {
  const auto byte = [&](size_t i) { return i < data.size() ? static_cast<unsigned char>(data[i]) : 0u; };
  const bool png = data.compare(0, 4, "\x89" "PNG") == 0;
  const bool jpeg = byte(0) == 0xFF && byte(1) == 0xD8;
  const bool bmp = data.compare(0, 2, "BM") == 0;
  if (!png && !jpeg && !bmp) {
    throw Error(fmt::format("cannot decode image '{}': not a PNG, JPEG or BMP file", file.string()));
  }
}

}  // namespace

torch::Tensor decode_rgb(const fs::path& file) {
  // Decoded from memory: stb_image's file reader skips bytes one getc at a time, so a 75-byte BMP
  // claiming 4.6 million rows took 24 s (found by fuzz_image). The header's size is checked before
  // decoding, since stb_image fills rows past the end of the data instead of failing.
  std::error_code ec;
  const auto bytes = fs::file_size(file, ec);
  if (!ec && bytes > kMaxImageFileBytes) {
    throw Error(fmt::format("image '{}' is {} bytes, more than the {} MiB an image may have", file.string(), bytes,
                            kMaxImageFileBytes >> 20));
  }
  const std::string data = read_file(file);
  check_image_format(file, data);
  check_png_chunks(file, data);
  const auto* raw = reinterpret_cast<const stbi_uc*>(data.data());
  const int len = static_cast<int>(data.size());
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(raw, len, &w, &h, &channels) == 0) {
    throw Error(fmt::format("cannot decode image '{}': {}", file.string(), stbi_failure_reason()));
  }
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      static_cast<int64_t>(w) * h > kMaxImagePixels) {
    throw Error(fmt::format("image '{}' says it is {}x{} pixels, more than the {} per side and {} in all an image may "
                            "have",
                            file.string(), w, h, kMaxImageSide, kMaxImagePixels));
  }
  unsigned char* pixels = stbi_load_from_memory(raw, len, &w, &h, &channels, 3);
  if (pixels == nullptr) {
    throw Error(fmt::format("cannot decode image '{}': {}", file.string(), stbi_failure_reason()));
  }
  auto chw = torch::from_blob(pixels, {h, w, 3}, torch::kUInt8).permute({2, 0, 1}).contiguous();
  stbi_image_free(pixels);
  return chw;
}

void check_image_shape(const fs::path& file, const torch::Tensor& image, at::IntArrayRef shape,
                       const DataOptions& options) {
  if (image.sizes() != shape) {
    throw Error(fmt::format("image '{}' is {}x{}{}, but the first image is {}x{}: {}", file.string(), image.size(2),
                            image.size(1), options.resize > 0 ? " after --resize" : "", shape[2], shape[1],
                            options.resize > 0 ? "add --crop N to cut them all to N x N"
                                               : "pass --resize N and/or --crop N to bring them to one size"));
  }
}

torch::Tensor resize_and_crop(const fs::path& file, torch::Tensor image, const DataOptions& o) {
  if (o.resize > 0) {
    // The short side to o.resize and the long side in proportion, truncated (torchvision's Resize).
    const int64_t h = image.size(1), w = image.size(2);
    const int64_t nh = h <= w ? o.resize : o.resize * h / w;
    const int64_t nw = h <= w ? o.resize * w / h : o.resize;
    if (nh < 1 || nw < 1) {
      throw Error(fmt::format("image '{}' is {}x{}: --resize {} leaves no pixel along its long side", file.string(), w, h,
                              o.resize));
    }
    if (nh != h || nw != w) {
      namespace F = torch::nn::functional;
      auto x = image.unsqueeze(0).to(torch::kFloat32);
      x = F::interpolate(x, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{nh, nw})
                                .mode(torch::kBilinear)
                                .align_corners(false)
                                .antialias(true));
      image = x.squeeze(0).round_().clamp_(0, 255).to(torch::kUInt8).contiguous();
    }
  }
  if (o.crop > 0) {
    const int64_t h = image.size(1), w = image.size(2);
    if (h < o.crop || w < o.crop) {
      throw Error(fmt::format("image '{}' is {}x{}{}, smaller than --crop {}", file.string(), w, h,
                              o.resize > 0 ? " after --resize" : "", o.crop));
    }
    // The centre, rounded half to even (torchvision's CenterCrop).
    const auto top = static_cast<int64_t>(std::nearbyint((h - o.crop) / 2.0));
    const auto left = static_cast<int64_t>(std::nearbyint((w - o.crop) / 2.0));
    image = image.narrow(1, top, o.crop).narrow(2, left, o.crop).contiguous();
  }
  return image;
}

}  // namespace detail

torch::Tensor read_image(const fs::path& file, const DataOptions& options) {
  return detail::resize_and_crop(file, detail::decode_rgb(file), options);
}

Dataset read_image_folder(const fs::path& dir, const DataOptions& options) {
  auto source = detail::listed_source(detail::list_image_folder(dir, options), dir.string(), 0, -1, options);
  Dataset ds;
  std::tie(ds.images, ds.labels) = source->read(0, source->size());
  ds.classes = source->classes();
  ds.source = source->source();
  return ds;
}

}  // namespace sdsgsm
