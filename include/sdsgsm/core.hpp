// Core utilities shared by every part of sdsgsm: the error type, the thread set-up,
// atomic file writes and small helpers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sdsgsm {

namespace fs = std::filesystem;

/// The one exception type the library throws for bad input or bad options. Its message is a
/// single line meant for the user; the command-line tool prints it and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Sets LibTorch's intra-op thread count (Debian's LibTorch defaults to ONE thread).
/// threads <= 0 means "all cores" (under mpirun: the cores divided among the ranks on this
/// machine). Returns the count in force afterwards.
int configure_threads(int threads);

/// Number of hardware threads of this machine (at least 1).
int hardware_threads();

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename, so a crash
/// never leaves a half-written file under the final name.
void write_file_atomic(const fs::path& path, std::string_view bytes);

/// Has `write` produce a file at a temporary path beside `path`, then renames it onto `path`;
/// on any failure the temporary file is removed and Error names `path`.
void write_via_temp(const fs::path& path, const std::function<void(const fs::path& tmp)>& write);

/// Reads a whole file; throws Error naming the file when it cannot be read.
std::string read_file(const fs::path& path);

/// MD5 of a byte string, as 32 lowercase hex digits.
std::string md5_hex(std::string_view bytes);

/// MD5 of a file's content; throws Error naming the file when it cannot be read.
std::string md5_file(const fs::path& path);

/// Parses a number that may be written as a fraction ("8/255", "0.03", "2e-3").
/// Throws Error mentioning `what` when the text is not a number.
double parse_number(const std::string& text, const std::string& what);

/// Library versions as one human-readable line (sdsgsm, LibTorch).
std::string version_string();

}  // namespace sdsgsm
