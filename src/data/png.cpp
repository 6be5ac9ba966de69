// PNG files of images in [0,1] (stb_image_write; its implementation is in stb_impl.cpp).
#include <fmt/format.h>
#include <stb_image_write.h>

#include "sdsgsm/data.hpp"

namespace sdsgsm {

std::string encode_png(const torch::Tensor& image /* 3 x H x W */) {
  auto u8 = torch::round(image.clamp(0, 1) * 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(u8.size(0)), w = static_cast<int>(u8.size(1));
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (stbi_write_png_to_func(append, &bytes, w, h, 3, u8.data_ptr<uint8_t>(), w * 3) == 0) {
    throw Error(fmt::format("cannot encode a {}x{} image as PNG", w, h));
  }
  return bytes;
}

void write_png(const torch::Tensor& image /* 3 x H x W */, const fs::path& file) {
  // Encoded in memory, then written atomically: stbi_write_png would ignore a failed fwrite (a
  // full disk) and leave a truncated file under the final name.
  write_file_atomic(file, encode_png(image));
}

}  // namespace sdsgsm
