#include <thread>

#include <torch/torch.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/distributed.hpp"

namespace sdsgsm {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int configure_threads(int threads) {
  int n = threads <= 0 ? std::max(1, hardware_threads() / dist::local_size()) : threads;
  torch::set_num_threads(n);
  // Inter-op parallelism is unused by eager C++ code; keep it from oversubscribing the cores.
  static bool interop_set = false;
  if (!interop_set) {
    try {
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // Already started by an earlier parallel call: nothing to do.
    }
    interop_set = true;
  }
  return torch::get_num_threads();
}

}  // namespace sdsgsm
