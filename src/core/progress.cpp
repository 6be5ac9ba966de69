#include "sdsgsm/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace sdsgsm {

std::string format_duration(double s) {
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("{:.1f}s", s);
  auto total = static_cast<long>(s + 0.5);
  long h = total / 3600, m = (total % 3600) / 60, sec = total % 60;
  if (h > 0) return fmt::format("{}h{:02}m{:02}s", h, m, sec);
  return fmt::format("{}m{:02}s", m, sec);
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (enabled_ && tty_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double Progress::elapsed_seconds() const { return seconds_since(start_); }

void Progress::advance(int64_t n, const std::string& status) {
  done_ += n;
  status_ = status;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ > std::chrono::milliseconds(200) || done_ >= total_) {
      last_draw_ = now;
      draw(false);
    }
  } else {
    int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : 0;
    if (decile != last_decile_ && done_ < total_) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  if (enabled_ && !finished_) draw(true);
  finished_ = true;
}

void Progress::draw(bool final_line) {
  double el = elapsed_seconds();
  double rate = el > 0 ? done_ / el : 0;
  double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
  std::string eta = rate > 0 && done_ < total_ ? format_duration((total_ - done_) / rate) : "0s";
  std::string counters = fmt::format("{}/{} {:.1f}/s elapsed {} eta {}", done_, total_, rate,
                                     format_duration(el), eta);
  if (tty_) {
    const int width = 24;
    int filled = static_cast<int>(frac * width);
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %s %s\033[K%s", label_.c_str(), bar.c_str(),
                 100 * frac, counters.c_str(), status_.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s %3.0f%% %s %s\n", label_.c_str(), 100 * frac, counters.c_str(),
                 status_.c_str());
  }
  std::fflush(stderr);
}

}  // namespace sdsgsm
