// The number parser of --eps, --alpha, ... ("8/255", "0.03", "2e-3").
#include <cmath>
#include <cstdlib>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    double v = sdsgsm::parse_number(text, "--eps");
    if (!std::isfinite(v) && text.find('/') == std::string::npos) std::abort();  // plain numbers are finite
  } catch (const sdsgsm::Error& e) {
    if (std::string(e.what()).find("--eps") == std::string::npos) std::abort();  // the message names the option
  }
  return 0;
}
