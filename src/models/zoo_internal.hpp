#pragma once

#include "sdsgsm/models.hpp"

namespace sdsgsm {

std::shared_ptr<Network> make_cifar_resnet(int64_t depth, int64_t num_classes);
std::shared_ptr<Network> make_vgg7bn(int64_t num_classes);

}  // namespace sdsgsm
