// The CIFAR-10 binary reader: in memory (open_dataset) and streaming (open_image_source).
#include "fuzz_util.hpp"
#include "sdsgsm/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = sdsgsm_fuzz::scratch() / "batch.bin";
  sdsgsm_fuzz::write(file, data, size);
  sdsgsm_fuzz::expect_clean([&] { (void)sdsgsm::open_dataset(file, sdsgsm::Split::Test); });
  sdsgsm_fuzz::expect_clean([&] {
    auto src = sdsgsm::open_image_source(file, sdsgsm::Split::Test);
    for (int64_t i = 0; i < src->size(); i += 4) (void)src->read(i, std::min<int64_t>(4, src->size() - i));
  });
  return 0;
}
