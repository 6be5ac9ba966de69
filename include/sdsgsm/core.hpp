// Core utilities shared by every part of sdsgsm: the error type, the thread set-up,
// atomic file writes and small helpers.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// A public option field with a chained setter, as in LibTorch's options objects:
/// SDSGSM_OPTION(int64_t, steps, 10) declares `int64_t steps = 10;` and `set_steps(v)` returning
/// the options. (TORCH_ARG would hide the field behind an accessor, steps(); the library, the
/// command line and the Python module read the fields directly.) One macro for every options struct.
#define SDSGSM_OPTION(T, name, def) \
  T name = def;                     \
  auto& set_##name(T v) {           \
    name = std::move(v);            \
    return *this;                   \
  }

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
/// machine). Returns the count in force afterwards. Also calls keep_freed_memory().
int configure_threads(int threads);

/// Has glibc keep freed blocks of up to 32 MiB in the heap instead of returning them to the
/// system, so that the activations of each pass do not fault their pages in again (about a fifth
/// of an attack's time on CPU). Called once by configure_threads.
void keep_freed_memory();

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

/// A new, uniquely named folder (mkdtemp) inside `parent` (made absolute, created if needed),
/// removed with everything in it when the object goes out of scope.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const fs::path& parent, const std::string& prefix = ".sdsgsm-tmp-");
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  /// Absolute path of the folder.
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// What a program run by `run_process` did.
struct ProcessResult {
  int exit_code = -1;   ///< its exit status; 128 + N when killed by signal N; 127 when not found
  std::string output;   ///< its standard output and standard error, interleaved
  /// The program's own error text as one line (the lines that mention an error, else the last
  /// lines), for messages.
  std::string summary() const;
};

/// Runs argv[0] (looked up in PATH) with the arguments argv[1..], in the folder `cwd` (empty:
/// the current one), without a shell, with standard input from /dev/null; waits for it and
/// returns its exit status and output.
ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& cwd = {});

/// How a function run by `run_in_child` ended.
struct ChildOutcome {
  enum Kind {
    returned,   ///< it returned
    threw,      ///< it threw an exception
    crashed,    ///< the child died of a fault (SIGSEGV, SIGABRT, ...) or exited with another status
    other       ///< it was stopped from outside (e.g. Ctrl-C), ran past the time limit, or fork failed
  };
  Kind kind = other;
  int signal = 0;       ///< the signal that ended a crashed child (0: it exited with a status)
  int exit_status = 0;  ///< the status a child that exited gave
  /// "Segmentation fault (signal 11)" or "exit status 1", for messages about a crash.
  std::string crash_text() const;
};

/// Runs `fn` in a forked copy of this process that does nothing else, with standard output and
/// error sent to /dev/null, and waits for it, at most `timeout` (then kills it: `other`). For calls
/// into code that can crash the whole process on a hostile input, such as LibTorch's TorchScript
/// parser: a crash ends the child only. Only the calling thread exists in the child: `fn` should not
/// need the others (set one intra-op thread in it before any parallel LibTorch call).
ChildOutcome run_in_child(const std::function<void()>& fn, std::chrono::milliseconds timeout);

/// Unpacks an archive (tar, tar.gz, zip, ... as libarchive reads them) into `dest`; entries that
/// would land outside `dest` are refused. Throws Error naming the archive.
void extract_archive(const fs::path& archive, const fs::path& dest);

/// Reads every entry of a zip archive (e.g. a TorchScript or LibTorch file), checking each one's
/// CRC-32; throws Error naming the archive and the damaged entry.
void verify_zip(const fs::path& path);

/// MD5 of a byte string, as 32 lowercase hex digits.
std::string md5_hex(std::string_view bytes);

/// MD5 of a file's content; throws Error naming the file when it cannot be read.
std::string md5_file(const fs::path& path);

/// Parses a number that may be written as a fraction ("8/255", "0.03", "2e-3").
/// Throws Error mentioning `what` when the text is not a number.
double parse_number(const std::string& text, const std::string& what);

/// The one check of a batch size (--batch-size): throws Error when it is below 1.
void check_batch_size(int64_t batch_size);

/// Library versions as one human-readable line (sdsgsm, LibTorch).
std::string version_string();

}  // namespace sdsgsm
