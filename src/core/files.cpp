// Files: atomic writes, whole-file reads, temporary folders.
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "sdsgsm/core.hpp"

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
    errno = 0;
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      throw Error(fmt::format("cannot write '{}': {}", path.string(), errno ? std::strerror(errno) : "write failed"));
    }
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

ScopedTempDir::ScopedTempDir(const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  fs::path base = fs::absolute(parent, ec);
  if (ec) throw Error(fmt::format("cannot resolve '{}': {}", parent.string(), ec.message()));
  fs::create_directories(base, ec);
  if (ec) throw Error(fmt::format("cannot create '{}': {}", base.string(), ec.message()));
  std::string tmpl = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw Error(fmt::format("cannot create a temporary folder in '{}': {}", base.string(), std::strerror(errno)));
  }
  path_ = tmpl;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

}  // namespace sdsgsm
