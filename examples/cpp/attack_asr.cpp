// The installed library from C++: load the shipped ResNet-20 (found in the install prefix), attack
// the first COUNT CIFAR-10 test images, print the attack success rate (ASR) over the images the
// model classifies correctly, before and after rounding the adversarials to 8-bit pixels.
//   attack_asr CIFAR10_DIR [COUNT=16] [ATTACK=sdsgsm] [MODEL=resnet20]
#include <cstdio>
#include <exception>
#include <string>

#include <torch/torch.h>

#include <sdsgsm/attacks.hpp>
#include <sdsgsm/data.hpp>
#include <sdsgsm/evaluation.hpp>
#include <sdsgsm/models.hpp>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::fprintf(stderr, "usage: %s CIFAR10_DIR [COUNT=16] [ATTACK=sdsgsm] [MODEL=resnet20]\n", argv[0]);
    return 2;
  }
  try {
    const int64_t count = argc > 2 ? std::stoll(argv[2]) : 16;
    const std::string attack_name = argc > 3 ? argv[3] : "sdsgsm";
    const std::string model_name = argc > 4 ? argv[4] : "resnet20";

    std::shared_ptr<sdsgsm::Classifier> model = sdsgsm::load_classifier(model_name);
    sdsgsm::Dataset data = sdsgsm::open_dataset(argv[1], sdsgsm::Split::Test, /*offset=*/0, count);
    torch::Tensor x = data.float_images(0, data.size());  // N x 3 x 32 x 32 in [0,1]
    torch::Tensor y = data.batch_labels(0, data.size());

    auto attack = sdsgsm::make_attack(attack_name, sdsgsm::AttackOptions().set_eps(8.0 / 255));
    sdsgsm::AttackResult r = attack->run(*model, x, y);

    torch::Tensor correct = r.clean_pred.eq(y);
    torch::Tensor x8 = (r.adversarial * 255).round() / 255;
    torch::Tensor fooled8 = sdsgsm::predict(*model, x8).ne(y);
    const int64_t n = correct.sum().item<int64_t>();
    const int64_t fooled = (r.success & correct).sum().item<int64_t>();
    const int64_t fooled_8bit = (fooled8 & correct).sum().item<int64_t>();
    const double linf = (r.adversarial - x).abs().max().item<double>();
    std::printf("model %s (%s)\n", model_name.c_str(), sdsgsm::find_zoo_weights(model_name).c_str());
    std::printf("%s on %lld images, %lld classified correctly\n", attack_name.c_str(),
                static_cast<long long>(data.size()), static_cast<long long>(n));
    std::printf("ASR %.2f%% (%lld/%lld), 8-bit %.2f%% (%lld/%lld), max |x_adv - x| = %.5f\n",
                n ? 100.0 * fooled / n : 0.0, static_cast<long long>(fooled), static_cast<long long>(n),
                n ? 100.0 * fooled_8bit / n : 0.0, static_cast<long long>(fooled_8bit), static_cast<long long>(n),
                linf);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attack_asr: error: %s\n", e.what());
    return 1;
  }
}
