// Pictures for people: saliency sheets of SD-SGSM's decision-dependent domain, and the HTML report
// of attack runs (one self-contained page: tables, curves, distributions, examples).
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "sdsgsm/core.hpp"
#include "sdsgsm/data.hpp"

namespace sdsgsm {

/// The "hot" colour map (black - red - yellow - white) of values in [0,1]: N x 1 x H x W -> N x 3 x H x W.
torch::Tensor hot_colormap(const torch::Tensor& values);

/// Writes a PNG with one row per image: image | sensitivity S~ (hot colour map) | S~ over the
/// image | the domain D (pixels outside D dimmed). Images N x 3 x H x W in [0,1], s_norm
/// N x 1 x H x W in [0,1], domain N x 1 x H x W bool; each pixel drawn as scale x scale.
void write_saliency_png(const torch::Tensor& images, const torch::Tensor& s_norm, const torch::Tensor& domain,
                        const fs::path& file, int scale = 4);

struct ReportOptions {
  int64_t examples = 4;   ///< images in each attack's example grid
  bool model = true;      ///< load the model for the examples' confidences and allocation maps
  int bootstrap_resamples = 2000;
  uint64_t bootstrap_seed = 0;  ///< when no paired.json beside the runs gives the statistics
};

/// The attack run folders under `inputs`, in report order. Each input is a run folder (with
/// metrics.json) or a folder holding run folders one or two levels down (a compare or reproduce
/// output); throws Error naming an input that is neither.
std::vector<fs::path> find_run_folders(const std::vector<fs::path>& inputs);

/// The HTML report of the runs under `inputs` (see find_run_folders): one self-contained page,
/// images inline, no network. Runs on the same model and images are compared with each other.
/// What cannot be shown (no adversarial shards, no timing.json, data or model not found) is
/// noted in the page.
std::string report_html(const std::vector<fs::path>& inputs, const ReportOptions& options = {});

/// Writes report_html(inputs, options) to `file` atomically.
void write_report_html(const fs::path& file, const std::vector<fs::path>& inputs, const ReportOptions& options = {});

/// One of the paper's claims beside what a reproduce run measured, with the verdict of a stated rule.
struct Claim {
  std::string claim, paper, ours;
  std::string verdict;  ///< "reproduced", "partly", "not reproduced" or "not measured"
  std::string rule;     ///< how the verdict follows from the figures
  nlohmann::json measured;  ///< the figures behind `ours`, per model
};

/// The paper's claims (ASR 99.9% and SSIM 0.947 on CIFAR-10; less l2 than FGSM, I-FGSM and
/// MI-FGSM; the ablation: spatial distribution and smoothing complementary) beside the results of
/// the reproduce folder `dir` (its results.json and MODEL/paired.json); empty when `dir` holds no
/// results.json. The one place their figures and verdicts are computed.
std::vector<Claim> reproduce_claims(const fs::path& dir);
nlohmann::json claims_json(const std::vector<Claim>& claims);
/// The claims as a Markdown table (claim | paper | ours | verdict), then each claim's rule.
std::string claims_markdown(const std::vector<Claim>& claims);
/// Writes `dir`/claims.json and claims.md for a reproduce folder; false (nothing written) otherwise.
bool write_claims(const fs::path& dir);

/// What compare and reproduce call when their runs are done: writes `dir`/report.html from the run
/// folders in `dir` (and, for a reproduce folder, claims.json and claims.md). A failure is logged
/// as a warning and returns false: the runs stay valid
/// without their page, which `sdsgsm report` can rebuild.
bool write_folder_report(const fs::path& dir);

}  // namespace sdsgsm
