// Running an attack over a data set: batch by batch, with per-sample results and metrics (float
// and 8-bit rounded) and the summary over the originally-correct samples.
//
// The runner streams: it reads a batch (ImageSource), attacks it, and (given an output folder)
// writes that batch's per-sample results and adversarial shard before the next, so memory does
// not grow with the number of images and an interrupted run can resume. Under mpirun the batches
// are split across ranks (batch b on rank b mod P); rank 0 receives them in batch order and alone
// writes, so the files equal a single process's.
//
// This header is also the umbrella of a run's pieces: its result (run_result.hpp), the folder it
// writes (run_folder.hpp, which lists the folder's files). The tables made from runs are the
// report's (tables.hpp, curves.hpp, report.hpp), which sit above the runner and never call it.
#pragma once

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

struct RunOptions {
  int64_t batch_size = 128;  ///< activations of 128 CIFAR images stay in cache: ~1.7x the gradient passes of 256 here
  bool progress = true;
  int64_t first_index = 0;        ///< data-set index of the source's first image (sample ids, reports)
  bool keep_adversarial = false;  ///< also return the adversarial images in memory (runs without an output folder)
  torch::Device device = torch::kCPU;

  /// Throws Error naming --batch-size when it is below 1 (run_attack checks it too).
  void validate() const;
};

/// Attacks every image of `source` in batches. With `output`, writes per batch to output->work,
/// resuming from the batches already there (refusing them if the fingerprint differs), and
/// finishes the folder; a folder already finished is read back instead of attacked. Collective
/// under mpirun: every rank calls it; rank 0's result has every sample.
AttackRunResult run_attack(Classifier& model, const ImageSource& source, const Attack& attack,
                           const RunOptions& options, const RunOutput* output = nullptr);

/// The same on an in-memory data set, without outputs.
AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options);

}  // namespace sdsgsm
