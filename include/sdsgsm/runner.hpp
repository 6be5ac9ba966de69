// Running an attack over a data set: batch by batch, with per-sample results and metrics (float
// and 8-bit rounded) and the summary over the originally-correct samples.
//
// The runner streams: it reads a batch (ImageSource), attacks it, and (given an output folder)
// writes that batch's per-sample results and adversarial shard before the next, so memory does
// not grow with the number of images and an interrupted run can resume. Under mpirun the batches
// are split across ranks (batch b on rank b mod P); rank 0 receives them in batch order and alone
// writes, so the files equal a single process's.
//
// An output folder holds:
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
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"

namespace sdsgsm {

struct RunOptions {
  int64_t batch_size = 128;  ///< activations of 128 CIFAR images stay in cache: ~1.7x the gradient passes of 256 here
  bool progress = true;
  int64_t first_index = 0;        ///< data-set index of the source's first image (sample ids, reports)
  bool keep_adversarial = false;  ///< also return the adversarial images in memory (runs without an output folder)
  torch::Device device = torch::kCPU;
};

/// Per-sample results of one attack over a data set; every tensor has one row per image.
struct AttackRunResult {
  std::string attack;
  nlohmann::json config;
  torch::Tensor index, label, target, clean_pred, adv_pred, success, iterations;
  torch::Tensor l2, linf, l0, ssim, psnr;  ///< float adversarials
  torch::Tensor adv_pred_8bit, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit;
  torch::Tensor adversarial;  ///< N x C x H x W float (with RunOptions::keep_adversarial)
  int64_t zero_gradient_samples = 0;
  std::vector<std::string> warnings;  ///< the evaluation checks' findings (sdsgsm/checks.hpp)
  // Wall-clock figures (not part of the deterministic summary).
  double attack_seconds = 0;      ///< in the attack itself (model passes and DDI), summed over ranks
  double allocation_seconds = 0;  ///< of which computing allocation maps (SD-SGSM's DDI)
  double wall_seconds = 0;        ///< the run as a whole (this session, if resumed)
  int64_t images_this_session = 0;

  int64_t size() const { return index.defined() ? index.size(0) : 0; }
  bool targeted() const;
  /// Every figure: accuracy, ASR, distortions (mean/median), SSIM, PSNR; float and 8-bit.
  /// Deterministic: no times.
  nlohmann::json summary() const;
  /// The wall-clock figures, with images/s.
  nlohmann::json timing() const;
  /// summary() and timing() in one object (for tables).
  nlohmann::json report() const;
  /// samples.csv content.
  std::string samples_csv() const;
};

/// Where a run writes (see the file comment). `work` is the folder written into (the partial
/// folder of an attack, or a sub-folder of a compare's); the caller renames it when complete.
struct RunOutput {
  fs::path work;
  nlohmann::json info;          ///< model, data, ...: copied into metrics.json
  nlohmann::json fingerprint;   ///< everything the results depend on; a resume must match it
  bool adversarial = true;      ///< write the adversarial shards
  int64_t sheet = 8;            ///< images in sheet.png (0: none)
};

/// Attacks every image of `source` in batches. With `output`, writes per batch to output->work,
/// resuming from the batches already there (refusing them if the fingerprint differs), and
/// finishes the folder; a folder already finished is read back instead of attacked. Collective
/// under mpirun: every rank calls it; rank 0's result has every sample.
AttackRunResult run_attack(Classifier& model, const ImageSource& source, const Attack& attack,
                           const RunOptions& options, const RunOutput* output = nullptr);

/// The same on an in-memory data set, without outputs.
AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options);

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

/// Writes a PNG sheet: one row per image, columns clean | adversarial | |delta| amplified.
void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale = 4);

/// Reads the adversarial shards of an output folder back as one N x C x H x W tensor; with
/// `count` >= 0, only the shards holding its first `count` images (at least those).
torch::Tensor read_adversarial(const fs::path& dir, int64_t count = -1);

/// A finished output folder read back: the per-sample columns (samples.pt), the attack's name,
/// configuration and warnings (metrics.json) and its times (timing.json; zeros when absent).
/// Throws Error naming the folder when it is not a finished run folder, or a file when it is corrupt.
AttackRunResult read_run(const fs::path& dir);

/// A markdown table comparing several runs (ASR, l2, l_inf, SSIM, PSNR, images/s; float and
/// 8-bit), from AttackRunResult::report() objects.
std::string comparison_markdown(const std::vector<nlohmann::json>& reports);

}  // namespace sdsgsm
