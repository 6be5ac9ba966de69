// Pieces the runner (runner.cpp) and the run folder (run_folder.cpp, batch_packet.cpp) share:
// one batch's results as a rank computes them and rank 0 stores them, and rank 0's bookkeeping
// of the folder a run writes while it runs.
#pragma once

#include <string>
#include <vector>

#include "sdsgsm/data.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm::detail {

/// The figures a run adds up over its batches (besides the per-sample columns).
struct Tally {
  int64_t zero_gradient = 0;
  double attack_seconds = 0, allocation_seconds = 0, metrics_seconds = 0;
  Tally& operator+=(const Tally& t) {
    zero_gradient += t.zero_gradient;
    attack_seconds += t.attack_seconds;
    allocation_seconds += t.allocation_seconds;
    metrics_seconds += t.metrics_seconds;
    return *this;
  }
};

/// One batch's results: what a rank computes and rank 0 writes.
struct BatchPacket {
  torch::Tensor columns;      ///< b x sample_columns() float64 (integers exact)
  torch::Tensor adversarial;  ///< b x C x H x W float32, CPU
  Tally tally;
};

/// A value as torch.save's pickle bytes, and back (an Error naming `what` when corrupt).
std::string pickle(const c10::IValue& v);
c10::IValue unpickle(const std::string& bytes, const std::string& what);

/// A packet as bytes (between ranks, and as a kept batch), and back; `with_adversarial` false
/// leaves the images out of the decoded packet.
std::string encode(const BatchPacket& p);
BatchPacket decode(const std::string& bytes, bool with_adversarial, const std::string& what);

/// The file name of batch `b`'s shard (000000.pt, ...).
std::string shard_name(int64_t b);

/// Rank 0's bookkeeping of a run's work folder: the batches done (batches/, state.json) and, when
/// resuming, the rows and tally of those found there.
class WorkFolder {
 public:
  WorkFolder(const RunOutput& out, int64_t batches, int64_t batch_size);
  int64_t done() const { return done_; }
  /// Writes batch `b` (the next one) and then the state that counts it as done.
  void write(int64_t b, const BatchPacket& p);
  /// The per-sample rows and the tally of the batches found done when resuming.
  const std::vector<torch::Tensor>& rows() const { return rows_; }
  const Tally& resumed() const { return resumed_; }

 private:
  const RunOutput& out_;
  int64_t batches_, batch_size_;
  std::string hash_;
  int64_t done_ = 0;
  Tally resumed_;
  std::vector<torch::Tensor> rows_;
};

/// Writes the finished folder's files (samples.csv, samples.pt, timing.json, sheet.png,
/// metrics.json last, as the mark of a finished run) and drops the work state.
void finish_folder(const AttackRunResult& r, const RunOutput& out, const ImageSource& source, int64_t batch_size,
                   const torch::Tensor& rows);

/// A finished folder read back (its per-sample values exactly, its recorded times); `r` holds the
/// attack's name and configuration.
AttackRunResult read_finished(const RunOutput& out, AttackRunResult r);

}  // namespace sdsgsm::detail
