// The folders a run writes: all or nothing, resumable, refused when they hold something else.
//
// An attack's output folder holds:
//   metrics.json   every figure and the configuration; deterministic (no times): a resumed or
//                  multi-process run writes it byte for byte as an uninterrupted one does
//   samples.csv    one row per image
//   samples.pt     the same columns as one float64 N x 19 tensor (torch.load-able; the column
//                  names are in metrics.json), what compare and reproduce read back
//   timing.json    wall-clock figures: seconds, images/s, DDI time, threads, ranks, peak memory
//   adversarial/   the float adversarial images, one torch.load-able N x C x H x W shard per batch
//                  (000000.pt, 000001.pt, ...; torch.cat them in name order for the whole set)
//   sheet.png      clean | adversarial | perturbation amplified, for the first images
// While it runs, the folder is ".NAME.partial" beside NAME, holding state.json (configuration
// checksum, batches done) and batches/ (per-batch results); it is renamed to NAME when complete.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

/// Where a run writes (see the file comment). `work` is the folder written into (the partial
/// folder of an attack, or a sub-folder of a compare's); the caller renames it when complete.
struct RunOutput {
  fs::path work;
  nlohmann::json info;          ///< model, data, ...: copied into metrics.json
  nlohmann::json fingerprint;   ///< everything the results depend on; a resume must match it
  bool adversarial = true;      ///< write the adversarial shards
  int64_t sheet = 8;            ///< images in sheet.png (0: none)
};

/// An output folder written all or nothing, and resumable: the work happens in ".NAME.partial"
/// beside `dir` (with a run.json holding the configuration's fingerprint) and `commit()` renames it
/// onto `dir`, replacing an earlier sdsgsm output. Only rank 0 touches the file system.
class PartialFolder {
 public:
  /// Checks `dir` can be written. An interrupted run's partial folder is continued with `resume`
  /// (its fingerprint must equal `fingerprint`: otherwise an Error says what changed), discarded
  /// with `restart`, and otherwise refused with a message naming both options.
  PartialFolder(fs::path dir, nlohmann::json fingerprint, bool resume, bool restart);
  /// Left by an error before any batch was finished, the partial folder is removed (there is
  /// nothing to resume); otherwise it stays for --resume.
  ~PartialFolder();
  PartialFolder(const PartialFolder&) = delete;
  PartialFolder& operator=(const PartialFolder&) = delete;
  const fs::path& work() const { return work_; }
  const fs::path& dir() const { return dir_; }
  bool resumed() const { return resumed_; }
  /// Renames the partial folder onto `dir`.
  void commit();

 private:
  fs::path dir_, work_;
  bool resumed_ = false, committed_ = false;
  int uncaught_ = 0;
};

/// The fingerprint of a configuration: MD5 of its canonical JSON.
std::string fingerprint_hash(const nlohmann::json& fingerprint);

/// MD5 of a model file (part of a run's fingerprint: other weights, other results); "" for a
/// name that is not a file.
std::string model_checksum(const std::string& name_or_path);

/// Checks up front that `dir` can be created or replaced; throws Error otherwise.
void check_output_dir(const fs::path& dir);

/// Writes an output folder all or nothing: checks `dir`, lets `fill` write into a fresh
/// temporary folder beside it, then renames that onto `dir` (replacing an earlier sdsgsm output).
/// If `fill` throws, the temporary folder is removed and `dir` is left as it was.
void write_output_dir(const fs::path& dir, const std::function<void(const fs::path& tmp)>& fill);

/// Reads the adversarial shards of an output folder back as one N x C x H x W tensor; with
/// `count` >= 0, only the shards holding its first `count` images (at least those).
torch::Tensor read_adversarial(const fs::path& dir, int64_t count = -1);

/// A finished output folder read back: the per-sample columns (samples.pt), the attack's name,
/// configuration and warnings (metrics.json) and its times (timing.json; zeros when absent).
/// Throws Error naming the folder when it is not a finished run folder, or a file when it is corrupt.
AttackRunResult read_run(const fs::path& dir);

/// Writes a PNG sheet: one row per image, columns clean | adversarial | |delta| amplified.
void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale = 4);

}  // namespace sdsgsm
