// Shared by the libFuzzer targets: a scratch folder on tmpfs (one per process) and writing the
// input there. Each target exercises a reader through the library's public API; the library's
// own errors (sdsgsm::Error, and c10::Error, which the command-line tool also turns into one line)
// are expected outcomes, anything else (a crash, a sanitizer report, another exception) a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <c10/util/Exception.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm_fuzz {

namespace fs = std::filesystem;

inline const fs::path& scratch() {
  static const fs::path dir = [] {
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("sdsgsm-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write(const fs::path& path, const uint8_t* data, size_t size) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

/// Runs `f`, treating the library's one-line errors as expected.
template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const sdsgsm::Error&) {
  } catch (const c10::Error&) {
  }
}

}  // namespace sdsgsm_fuzz
