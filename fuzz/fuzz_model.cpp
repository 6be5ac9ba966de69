// The model loader (--model FILE): sdsgsm weight files and TorchScript archives; a model that
// loads is run on one image. load_classifier first tries torch::jit::load in a forked child, so a
// crash inside LibTorch's reader becomes an Error here (and each such input costs a fork).
#include <torch/torch.h>

#include "fuzz_util.hpp"
#include "sdsgsm/models.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  torch::set_num_threads(1);
  const auto file = sdsgsm_fuzz::scratch() / "model.pt";
  sdsgsm_fuzz::write(file, data, size);
  sdsgsm_fuzz::expect_clean([&] {
    auto model = sdsgsm::load_classifier(file.string());
    torch::NoGradGuard ng;
    (void)model->forward(torch::full({1, 3, 32, 32}, 0.5));
  });
  return 0;
}
