#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <stb_image.h>

#include "sdsgsm/data.hpp"

namespace sdsgsm {
namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

}  // namespace

Dataset read_image_folder(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error(fmt::format("image folder '{}' does not exist", dir.string()));
  std::vector<std::string> classes;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) classes.push_back(entry.path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) {
    throw Error(fmt::format("'{}' is neither a CIFAR-10 binary folder nor an image folder "
                            "(class_name/*.png)",
                            dir.string()));
  }
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> labels;
  int width = -1, height = -1;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir / classes[c])) {
      if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      int w = 0, h = 0, channels = 0;
      unsigned char* pixels = stbi_load(f.string().c_str(), &w, &h, &channels, 3);
      if (pixels == nullptr) {
        throw Error(fmt::format("cannot decode image '{}': {}", f.string(), stbi_failure_reason()));
      }
      if (width < 0) {
        width = w;
        height = h;
      } else if (w != width || h != height) {
        stbi_image_free(pixels);
        throw Error(fmt::format("image '{}' is {}x{}, but the folder's images are {}x{}", f.string(),
                                w, h, width, height));
      }
      auto hwc = torch::from_blob(pixels, {h, w, 3}, torch::kUInt8);
      imgs.push_back(hwc.permute({2, 0, 1}).contiguous());
      stbi_image_free(pixels);
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  if (imgs.empty()) throw Error(fmt::format("image folder '{}' holds no images", dir.string()));
  Dataset ds;
  ds.images = torch::stack(imgs);
  ds.labels = torch::tensor(labels, torch::kInt64);
  ds.classes = classes;
  ds.source = dir.string();
  return ds;
}

}  // namespace sdsgsm
