#include "sdsgsm/core.hpp"
#include "sdsgsm_config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

namespace sdsgsm {

void write_via_temp(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  fs::path tmp = path;
  tmp += fmt::format(".tmp{}", static_cast<long>(::getpid()));
  std::error_code ec;
  try {
    write(tmp);
  } catch (const Error&) {
    fs::remove(tmp, ec);
    throw;
  } catch (const c10::Error& e) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("cannot write '{}': {}", path.string(), e.what_without_backtrace()));
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("cannot write '{}': {}", path.string(), e.what()));
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("cannot write '{}': {}", path.string(), ec.message()));
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  write_via_temp(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw Error(fmt::format("cannot write '{}': write failed", path.string()));
  });
}

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(fmt::format("cannot read '{}': it is a folder", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(fmt::format("cannot read '{}': {}", path.string(),
                            fs::exists(path) ? std::strerror(errno) : "no such file"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double parse_number(const std::string& text, const std::string& what) {
  auto parse_plain = [&](const std::string& t) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v)) {
      throw Error(fmt::format("{}: '{}' is not a number (write e.g. 0.03 or 8/255)", what, text));
    }
    return v;
  };
  auto slash = text.find('/');
  if (slash == std::string::npos) return parse_plain(text);
  double num = parse_plain(text.substr(0, slash));
  double den = parse_plain(text.substr(slash + 1));
  if (den == 0) throw Error(fmt::format("{}: '{}' divides by zero", what, text));
  return num / den;
}

std::string version_string() {
  return fmt::format("sdsgsm {} (LibTorch {}.{}.{})", SDSGSM_VERSION, TORCH_VERSION_MAJOR,
                     TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
}

}  // namespace sdsgsm
