// Helpers shared by the sdsgsm tests: temporary folders, synthetic CIFAR-10 files, running the
// command-line tool, and checking sdsgsm::Error messages.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>

#include "sdsgsm/core.hpp"

// The slow tests (ctest label slow; the others are fast): those that start the sdsgsm tool, MPI,
// Python or a browser, or take a second or more. A test is slow by how it is written:
// SLOW_TEST / SLOW_TEST_F declare one test as TEST / TEST_F do, SLOW_SUITE(Suite); makes every test
// of Suite slow. tests/CMakeLists.txt reads these lines from the sources (at the start of a line).
#define SLOW_TEST(suite, name) TEST(suite, name)
#define SLOW_TEST_F(fixture, name) TEST_F(fixture, name)
#define SLOW_SUITE(suite) static_assert(sizeof(#suite) > 1, "SLOW_SUITE names a test suite")

namespace sdsgsm_test {

namespace fs = std::filesystem;

/// A uniquely named folder under the system temp dir, removed (recursively) on scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "suite";
    for (char& c : test) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      fs::path p = fs::temp_directory_path() /
                   ("sdsgsm-test-" + test + "-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter++) + "-" + std::to_string(rd() % 1000000));
      std::error_code ec;
      if (fs::create_directory(p, ec) && !ec) {
        path_ = p;
        return;
      }
    }
    throw std::runtime_error("cannot create a temporary folder");
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// Pixel of synthetic PNG image `id` at (x, y), channel c.
inline uint8_t png_pixel(int id, int x, int y, int c) { return static_cast<uint8_t>((id * 50 + x * 20 + y * 9 + c * 70) % 256); }

inline void write_png(const fs::path& f, int id, int w, int h, int channels = 3) {
  fs::create_directories(f.parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) px[(static_cast<size_t>(y) * w + x) * channels + c] = png_pixel(id, x, y, c);
  ASSERT_NE(stbi_write_png(f.string().c_str(), w, h, channels, px.data(), w * channels), 0) << f;
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Pixel value of synthetic CIFAR image `i`, channel `c`, row `y`, column `x`.
inline uint8_t synthetic_pixel(int64_t i, int64_t c, int64_t y, int64_t x) {
  return static_cast<uint8_t>((i * 37 + c * 101 + y * 7 + x * 3) % 256);
}

/// Bytes of a CIFAR-10 binary batch holding one record per label, pixels from synthetic_pixel
/// (image index offset by `first_index`).
inline std::string make_cifar_bytes(const std::vector<int>& labels, int64_t first_index = 0) {
  std::string out;
  for (size_t r = 0; r < labels.size(); ++r) {
    out.push_back(static_cast<char>(labels[r]));
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t y = 0; y < 32; ++y) {
        for (int64_t x = 0; x < 32; ++x) {
          out.push_back(static_cast<char>(synthetic_pixel(first_index + static_cast<int64_t>(r), c, y, x)));
        }
      }
    }
  }
  return out;
}

/// The message of the sdsgsm::Error `f` throws; records a failure when it throws nothing or
/// something else.
inline std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const sdsgsm::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected sdsgsm::Error, got another exception: " << e.what();
    return "<other exception>";
  } catch (...) {
    ADD_FAILURE() << "expected sdsgsm::Error, got a non-standard exception";
    return "<other exception>";
  }
  ADD_FAILURE() << "expected sdsgsm::Error, nothing was thrown";
  return "<no exception>";
}

/// Checks that `text` contains `part`.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

/// Runs a shell command line in `cwd` (empty: current dir), capturing stdout and stderr.
/// A test that starts the sdsgsm tool is slow: under ctest (which gives each test its label in
/// SDSGSM_TEST_LABEL) a fast one fails here, naming the macro that labels it.
inline CommandResult run_shell(const std::string& command, const fs::path& scratch, const fs::path& cwd = {}) {
#ifdef SDSGSM_TEST_BINARY
  const char* label = std::getenv("SDSGSM_TEST_LABEL");
  if (label && std::string(label) == "fast" && command.find(SDSGSM_TEST_BINARY) != std::string::npos) {
    ADD_FAILURE() << "this test starts the sdsgsm tool, so it is slow: declare it SLOW_TEST / SLOW_TEST_F, or "
                     "its suite SLOW_SUITE (test_util.hpp)";
  }
#endif
  fs::path out = scratch / "cmd.stdout", err = scratch / "cmd.stderr";
  std::string full = command + " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string()) + " </dev/null";
  if (!cwd.empty()) full = "cd " + shell_quote(cwd.string()) + " && " + full;
  int rc = std::system(full.c_str());
  CommandResult r;
  r.exit_code = rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc));
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  std::error_code ec;
  fs::remove(out, ec);
  fs::remove(err, ec);
  return r;
}

/// The real CIFAR-10 binary folder, or an empty path when it is not there.
inline fs::path real_cifar_dir() {
  fs::path dir = SDSGSM_TEST_DATA_DIR;
  return fs::is_regular_file(dir / "test_batch.bin") ? dir : fs::path();
}

inline bool real_cifar_train_available() {
  fs::path dir = real_cifar_dir();
  if (dir.empty()) return false;
  for (int i = 1; i <= 5; ++i) {
    if (!fs::is_regular_file(dir / ("data_batch_" + std::to_string(i) + ".bin"))) return false;
  }
  return true;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

}  // namespace sdsgsm_test

#define SDSGSM_SKIP_WITHOUT_CIFAR()                                                                   \
  do {                                                                                              \
    if (::sdsgsm_test::real_cifar_dir().empty())                                                    \
      GTEST_SKIP() << "real CIFAR-10 not found in '" SDSGSM_TEST_DATA_DIR                           \
                      "' (obtain it with 'sdsgsm data cifar10' or set -DSDSGSM_TEST_DATA=DIR)";     \
  } while (0)
