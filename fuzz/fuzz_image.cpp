// The image decoder path: an image folder holding the input as one PNG (decoded by content: PNG,
// JPEG and BMP reach stb_image, anything else is refused first), read in memory and streaming.
#include "fuzz_util.hpp"
#include "sdsgsm/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = sdsgsm_fuzz::scratch() / "images";
  sdsgsm_fuzz::write(dir / "cat" / "a.png", data, size);
  sdsgsm_fuzz::expect_clean([&] { (void)sdsgsm::read_image_folder(dir); });
  sdsgsm_fuzz::expect_clean([&] {
    auto src = sdsgsm::open_image_source(dir, sdsgsm::Split::Test);
    (void)src->read(0, src->size());
  });
  return 0;
}
