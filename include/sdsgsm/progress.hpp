// A progress reporter: a redrawn bar with rate and ETA when stderr is a terminal, plain
// periodic lines otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sdsgsm {

/// Wall-clock seconds since `t` (steady clock).
double seconds_since(std::chrono::steady_clock::time_point t);

class Progress {
 public:
  /// `total` units of work (images, steps); `label` starts every line.
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();

  /// Advances by `n` units; `status` is shown after the counters (e.g. "loss 0.41 acc 85.2%").
  void advance(int64_t n, const std::string& status = "");
  /// Ends the bar with a final line.
  void finish(const std::string& status = "");
  double elapsed_seconds() const;

 private:
  void draw(bool final_line);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::string status_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int last_decile_ = -1;
};

/// Formats seconds as "1h02m03s", "2m05s" or "4.2s".
std::string format_duration(double seconds);

}  // namespace sdsgsm
