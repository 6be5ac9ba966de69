#include <malloc.h>

#include <thread>

#include <torch/torch.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/distributed.hpp"

namespace sdsgsm {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void keep_freed_memory() {
  // Activations of a batch are megabytes each. By default glibc serves such blocks with mmap and
  // returns them with munmap when freed (and trims the heap), so every pass faults its pages in
  // again: ~16% of an attack's time went to the kernel's page faults. Blocks up to 32 MiB (the
  // largest threshold glibc accepts) now come from the heap, which is not trimmed below 1 GiB;
  // peak memory is unchanged (the same blocks are reused).
  static bool done = false;
  if (done) return;
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  done = true;
}

int configure_threads(int threads) {
  keep_freed_memory();
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
