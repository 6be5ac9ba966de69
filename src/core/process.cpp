// Running a program from an argument vector (posix_spawn), never through a shell; running a function
// in a forked child.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "sdsgsm/core.hpp"

extern char** environ;

namespace sdsgsm {
namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) throw Error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { posix_spawn_file_actions_init(&fa); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
};

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& cwd) {
  if (argv.empty()) throw Error("run_process: no program given");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  Pipe out;
  FileActions actions;
  posix_spawn_file_actions_addopen(&actions.fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions.fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions.fa, out.fd[1], 2);
  std::string dir = cwd.empty() ? std::string() : fs::absolute(cwd).string();
  if (!dir.empty()) posix_spawn_file_actions_addchdir_np(&actions.fa, dir.c_str());

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions.fa, nullptr, args.data(), environ);
  out.close_end(1);
  ProcessResult result;
  if (rc != 0) {
    result.exit_code = 127;
    result.output = rc == ENOENT ? fmt::format("{}: program not found", argv[0])
                                 : fmt::format("{}: cannot start: {}", argv[0], std::strerror(rc));
    return result;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out.fd[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(fmt::format("waiting for {} failed: {}", argv[0], std::strerror(errno)));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else {
    result.exit_code = 128 + WTERMSIG(status);
    result.output += fmt::format("\n{} was killed by signal {}", argv[0], WTERMSIG(status));
  }
  if (result.exit_code == 127 && result.output.empty()) {
    result.output = fmt::format("{}: program not found", argv[0]);
  }
  return result;
}

std::string ProcessResult::summary() const {
  // The lines that carry the error, or else the last lines, joined into one line.
  std::vector<std::string> lines, errors;
  size_t start = 0;
  while (start <= output.size()) {
    size_t nl = output.find('\n', start);
    std::string line = output.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? output.size() + 1 : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line = line.substr(first);
    lines.push_back(line);
    std::string lower = line;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("error") != std::string::npos || lower.find("not found") != std::string::npos ||
        lower.find("fail") != std::string::npos || lower.find("denied") != std::string::npos) {
      errors.push_back(line);
    }
  }
  const auto& pick = errors.empty() ? lines : errors;
  std::string text;
  size_t from = pick.size() > 4 ? pick.size() - 4 : 0;
  for (size_t i = from; i < pick.size(); ++i) text += (text.empty() ? "" : " | ") + pick[i];
  if (text.empty()) text = fmt::format("exit status {}, no output", exit_code);
  if (text.size() > 400) text = text.substr(0, 397) + "...";
  return text;
}

namespace {

// The child's exit status when `fn` threw; any other non-zero status (e.g. a sanitizer's report,
// which exits with 1) counts as a crash.
constexpr int kChildThrew = 86;

bool is_fault(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
         sig == SIGSYS;
}

}  // namespace

std::string ChildOutcome::crash_text() const {
  if (signal != 0) return fmt::format("{} (signal {})", strsignal(signal), signal);
  return fmt::format("exit status {}", exit_status);
}

ChildOutcome run_in_child(const std::function<void()>& fn, std::chrono::milliseconds timeout) {
  ChildOutcome result;
  const pid_t pid = ::fork();
  if (pid < 0) return result;  // no child: `other`, the caller goes on without the check
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    int status = 0;
    try {
      fn();
    } catch (...) {
      status = kChildThrew;
    }
    ::_exit(status);  // no atexit handlers, no flushing of the parent's buffers
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  int status = 0;
  for (;;) {
    const pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) return result;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return result;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    result.kind = code == 0 ? ChildOutcome::returned : code == kChildThrew ? ChildOutcome::threw : ChildOutcome::crashed;
    result.exit_status = code;
  } else if (WIFSIGNALED(status) && is_fault(WTERMSIG(status))) {
    result.kind = ChildOutcome::crashed;
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace sdsgsm
