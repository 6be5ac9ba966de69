#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm::cli {
namespace {

/// Flags shared by `attack` and `compare`, one to one with AttackOptions and RunOptions.
struct AttackFlags {
  std::string model = "resnet20";
  std::string data = "data/cifar10";
  std::string split = "test";
  int64_t count = 1000, offset = 0, batch = 128, sheet = 8;
  std::string eps = "8/255", alpha, decay;
  int64_t steps = 10;
  std::optional<bool> early_stop;
  bool early_stop_8bit = false;
  uint64_t seed = 0;
  std::string targeted = "none";
  int64_t target_label = -1;
  std::string out;
  bool resume = false, restart = false, no_adversarial = false;
  SdsgsmOptions sd;
};

void add_attack_flags(CLI::App* cmd, AttackFlags& f) {
  add_model_data_flags(cmd, f.model, f.data, f.split);
  cmd->add_option("--count", f.count, "Number of images to attack")->capture_default_str();
  cmd->add_option("--offset", f.offset, "Index of the first image")->capture_default_str();
  cmd->add_option("--batch-size", f.batch, "Images per batch")->capture_default_str();
  cmd->add_option("--eps", f.eps, "l_inf budget on the [0,1] scale (fractions allowed: 8/255)")->capture_default_str();
  cmd->add_option("--alpha", f.alpha,
                  "Step size (fractions allowed); default: 2/255 for the baselines, eps/steps x step factor for SD-SGSM");
  cmd->add_option("--steps", f.steps, "Iterations of the iterative attacks")->capture_default_str();
  cmd->add_option("--decay", f.decay, "Momentum decay mu; default: 1.0 for mifgsm/nifgsm, 0 (off) for the SD-SGSM family");
  cmd->add_flag_callback("--early-stop", [&f] { f.early_stop = true; },
                         "Freeze each sample as soon as it succeeds (fewer passes, less distortion); default for SD-SGSM");
  cmd->add_flag_callback("--no-early-stop", [&f] { f.early_stop = false; },
                         "Attack every sample for all steps (the default for the classic attacks)");
  cmd->add_flag("--early-stop-8bit", f.early_stop_8bit,
                "Early stop, freezing a sample only when its adversarial rounded to 8-bit pixels (a saved PNG) "
                "succeeds too");
  cmd->add_option("--seed", f.seed, "Seed for random starts and random targets")->capture_default_str();
  cmd->add_option("--targeted", f.targeted, "none, given (with --target-label), random or least-likely")
      ->capture_default_str();
  cmd->add_option("--target-label", f.target_label, "Target class for --targeted given");
  auto* g = "SD-SGSM (sdsgsm, sd-ifgsm, sgsm)";
  cmd->add_option("--window", f.sd.ddi.window, "DDI window side k")->capture_default_str()->group(g);
  cmd->add_option("--stride", f.sd.ddi.stride, "DDI window stride s (<= k)")->capture_default_str()->group(g);
  cmd->add_option("--fill", f.sd.ddi.fill, "Zero-out fill: zero, mean or blur")->capture_default_str()->group(g);
  cmd->add_option("--score", f.sd.ddi.score, "Window score: prob (true-class probability drop), margin or loss")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--ddi-batch", f.sd.ddi.max_batch, "Occluded images per forward call")->capture_default_str()->group(g);
  cmd->add_option("--rho", f.sd.rho, "Fraction of pixels in the decision-dependent domain")->capture_default_str()->group(g);
  cmd->add_option("--lambda", f.sd.lambda, "Background weight of the allocation map")->capture_default_str()->group(g);
  cmd->add_option("--map", f.sd.map, "Allocation map: hard or soft")->capture_default_str()->group(g);
  cmd->add_option("--gamma", f.sd.gamma, "Soft map exponent")->capture_default_str()->group(g);
  cmd->add_option("--beta", f.sd.beta, "tanh sharpness of the smoothed sign")->capture_default_str()->group(g);
  cmd->add_option("--step-factor", f.sd.step_factor, "Default alpha = eps / steps x this")->capture_default_str()->group(g);
  cmd->add_flag("--rescale-step", f.sd.rescale_step, "Step map alpha M / mean(M) instead of alpha M")->group(g);
  cmd->add_option("--recompute-every", f.sd.recompute_every, "Recompute the map every R iterations (0: once)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--sheet", f.sheet, "Images in the PNG sheet (0: none)")->capture_default_str();
  cmd->add_flag("--no-adversarial", f.no_adversarial, "Do not write the adversarial images (adversarial/ shards)");
  cmd->add_flag("--resume", f.resume,
                "Continue an interrupted run of the same command (its .OUT.partial folder); a changed configuration "
                "is refused");
  cmd->add_flag("--restart", f.restart, "Discard an interrupted run's partial output and start over");
  cmd->add_option("--out", f.out, "Output folder (written as .OUT.partial beside it, renamed when complete)")->required();
}

AttackOptions to_options(const AttackFlags& f) {
  AttackOptions o;
  o.set_eps(parse_number(f.eps, "--eps"))
      .set_steps(f.steps)
      .set_early_stop(f.early_stop_8bit && !f.early_stop ? std::optional<bool>(true) : f.early_stop)
      .set_early_stop_8bit(f.early_stop_8bit)
      .set_seed(f.seed)
      .set_targeted(parse_target_mode(f.targeted))
      .set_target_label(f.target_label);
  if (!f.alpha.empty()) o.set_alpha(parse_number(f.alpha, "--alpha"));
  if (!f.decay.empty()) o.set_decay(parse_number(f.decay, "--decay"));
  o.validate();
  return o;
}

struct Prepared {
  std::shared_ptr<Classifier> model;
  std::unique_ptr<ImageSource> data;
  RunOptions run;
  nlohmann::json info;         ///< deterministic: goes into metrics.json
  nlohmann::json fingerprint;  ///< what a resume must match (per attack: add its config)
};

Prepared prepare(const AttackFlags& f, const Common& common) {
  if (f.batch < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", f.batch));
  if (f.count < 1) throw Error(fmt::format("--count must be >= 1 (got {})", f.count));
  if (f.sheet < 0) throw Error(fmt::format("--sheet must be >= 0 (got {})", f.sheet));
  Prepared p;
  p.run.device = parse_device(common.device);
  p.model = load_classifier(f.model);
  p.model->to(p.run.device);
  p.data = open_image_source(f.data, to_split(f.split), f.offset, f.count);
  p.run.batch_size = f.batch;
  p.run.progress = !common.quiet;
  p.run.first_index = f.offset;
  p.info["model"] = p.model->name();
  p.info["model_kind"] = p.model->kind();
  p.info["data"] = p.data->source();
  p.info["split"] = f.split;
  p.info["offset"] = f.offset;
  p.info["count"] = p.data->size();
  p.info["batch_size"] = f.batch;
  p.info["version"] = version_string();
  p.fingerprint = p.info;
  p.fingerprint["model_md5"] = model_checksum(f.model);
  p.fingerprint["adversarial"] = !f.no_adversarial;
  p.fingerprint["sheet"] = f.sheet;
  return p;
}

RunOutput run_output(const Prepared& p, const AttackFlags& f, const Attack& attack, const fs::path& work) {
  RunOutput out;
  out.work = work;
  out.info = p.info;
  out.fingerprint = p.fingerprint;
  out.fingerprint["attack_config"] = attack.config();
  out.adversarial = !f.no_adversarial;
  out.sheet = f.sheet;
  return out;
}

/// curves.csv/json and paired.csv/json of a comparison (sdsgsm/curves.hpp); returns the paired
/// table as a markdown section.
std::string comparison_figures(const fs::path& dir, const std::vector<AttackRunResult>& results, uint64_t seed) {
  std::vector<std::string> labels;
  std::vector<const AttackRunResult*> runs;
  for (const auto& r : results) {
    labels.push_back(r.attack);
    runs.push_back(&r);
  }
  BootstrapOptions b;
  b.seed = seed;
  return fmt::format("\nPaired l2 per image (over the images both attacks fool; bootstrap {} resamples, seed {}):\n\n{}",
                     b.resamples, b.seed, write_comparison_figures(dir, labels, runs, {}, b));
}

}  // namespace

void add_attack_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "attack",
      "Attack images and measure the result. Writes to --out: metrics.json (every figure and the\n"
      "configuration), samples.csv and samples.pt (per image), timing.json (seconds, images/s, peak\n"
      "memory), adversarial/ (the float adversarials, one torch.load-able N x 3 x H x W shard per\n"
      "batch) and sheet.png (clean | adversarial | perturbation amplified). Batches are written as\n"
      "they finish: an interrupted run continues with --resume, and under mpirun the batches are\n"
      "shared among the ranks.\n"
      "Attacks: fgsm, ifgsm (bim), mifgsm, nifgsm, pgd, and the SD-SGSM family: sdsgsm (DDI map +\n"
      "tanh), sd-ifgsm (DDI map + sign), sgsm (uniform + tanh).");
  auto f = std::make_shared<AttackFlags>();
  auto name = std::make_shared<std::string>("ifgsm");
  cmd->add_option("--attack", *name, "Attack name")->capture_default_str();
  add_attack_flags(cmd, *f);
  cmd->callback([&run, &common, f, name] {
    run = [&common, f, name] {
      auto attack = make_attack(*name, to_options(*f), f->sd);
      Prepared p = prepare(*f, common);
      nlohmann::json fp = p.fingerprint;
      fp["attack_config"] = attack->config();
      PartialFolder folder(f->out, fp, f->resume, f->restart);
      RunOutput out = run_output(p, *f, *attack, folder.work());
      AttackRunResult r = run_attack(*p.model, *p.data, *attack, p.run, &out);
      folder.commit();
      if (!dist::is_root()) return;
      auto s = r.report();
      fmt::print("{} on {} ({} images): clean accuracy {:.2f}%, ASR {:.2f}% (8-bit {:.2f}%), l2 {:.3f}, "
                 "SSIM {:.4f}, PSNR {:.2f} dB, {:.0f} img/s\nwrote {}\n",
                 r.attack, p.model->name(), r.size(), 100 * s["clean_accuracy"].get<double>(),
                 100 * s["float"]["asr"].get<double>(), 100 * s["rounded_8bit"]["asr"].get<double>(),
                 s["float"]["l2_mean"].get<double>(), s["float"]["ssim_mean"].get<double>(),
                 s["float"]["psnr_mean"].get<double>(), s["images_per_second"].get<double>(), f->out);
    };
  });

  auto* cmp = app.add_subcommand(
      "compare",
      "Run several attacks on the same images and print one table (markdown; compare.md and\n"
      "compare.json in --out, with each attack's full outputs in a sub-folder), the curves and paired\n"
      "statistics (curves.csv/json, paired.csv/json) and report.html (see `sdsgsm report`).");
  auto fc = std::make_shared<AttackFlags>();
  auto names = std::make_shared<std::string>("fgsm,ifgsm,mifgsm,nifgsm,pgd");
  cmp->add_option("--attacks", *names, "Comma-separated attack names")->capture_default_str();
  add_attack_flags(cmp, *fc);
  cmp->callback([&run, &common, fc, names] {
    run = [&common, fc, names] {
      std::vector<std::unique_ptr<Attack>> attacks;
      AttackOptions o = to_options(*fc);
      for (const auto& item : split_list(*names)) {
        attacks.push_back(make_attack(item, o, fc->sd));
        for (size_t i = 0; i + 1 < attacks.size(); ++i) {
          if (attacks[i]->name() == attacks.back()->name()) {
            throw Error(fmt::format("--attacks lists '{}' twice", attacks.back()->name()));
          }
        }
      }
      if (attacks.empty()) throw Error("--attacks names no attack");
      Prepared p = prepare(*fc, common);
      nlohmann::json fp = p.fingerprint;
      for (const auto& a : attacks) fp["attacks"].push_back(a->config());
      PartialFolder folder(fc->out, fp, fc->resume, fc->restart);
      std::vector<nlohmann::json> reports;
      std::vector<AttackRunResult> results;
      for (const auto& a : attacks) {
        RunOutput out = run_output(p, *fc, *a, folder.work() / a->name());
        AttackRunResult r = run_attack(*p.model, *p.data, *a, p.run, &out);
        if (dist::is_root()) {
          reports.push_back(r.report());
          results.push_back(std::move(r));
        }
      }
      std::string report;
      if (dist::is_root()) {
        std::string table = comparison_markdown(reports);
        nlohmann::json j = p.info;
        j["attack_options"] = o.to_json();
        j["results"] = reports;
        j["ranks"] = dist::size();
        j["threads_per_rank"] = torch::get_num_threads();
        write_file_atomic(folder.work() / "compare.json", j.dump(2) + "\n");
        std::string header = fmt::format("{} on {} images of {} (eps {:.5f}, {} steps, early stop {}):\n\n",
                                         p.model->name(), p.data->size(), p.data->source(), o.eps, o.steps,
                                         o.early_stop ? (*o.early_stop ? "on" : "off") : "per attack");
        const std::string paired = comparison_figures(folder.work(), results, fc->seed);
        write_file_atomic(folder.work() / "compare.md", header + table + paired);
        write_folder_report(folder.work());
        report = header + table + paired + "\n";
      }
      folder.commit();
      if (dist::is_root()) fmt::print("{}wrote {}\n", report, fc->out);
    };
  });
}

}  // namespace sdsgsm::cli
