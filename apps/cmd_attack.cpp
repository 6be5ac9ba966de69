#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/min_eps.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/tables.hpp"

namespace sdsgsm::cli {
namespace {

/// Flags shared by `attack` and `compare`, one to one with AttackOptions and RunOptions.
struct AttackFlags {
  std::string model = "resnet20";
  std::string data = "data/cifar10";
  std::string split = "test";
  int64_t count = 1000, offset = 0, batch = 128, sheet = 8;
  std::string eps = "8/255", alpha, decay;
  /// kAttackDefault: each attack's own default (the registry's).
  static constexpr int64_t kAttackDefault = std::numeric_limits<int64_t>::min();
  int64_t steps = kAttackDefault;
  int64_t refine = 0;
  double refine_step = 2.0, refine_gamma = 0.2;
  std::optional<bool> early_stop;
  bool early_stop_8bit = false;
  uint64_t seed = 0;
  std::string targeted = "none";
  int64_t target_label = -1;
  std::string out;
  bool resume = false, restart = false, no_adversarial = false;
  std::string epsilons;  ///< compare: eps values of the ASR-against-eps curves
  bool min_eps = false;  ///< per-sample minimal eps by bisection
  int min_eps_rounds = 6;
  SdsgsmOptions sd;
  MinNormOptions mn;
  /// Parsed into mn (default l2) and, for APGD and Square, into AttackOptions::norm (default l_inf).
  std::string norm, learning_rate;
  int64_t restarts = 1;
  DataFlags data_flags;                   ///< --classes --resize --crop
};

void add_attack_flags(CLI::App* cmd, AttackFlags& f) {
  add_model_data_flags(cmd, f.model, f.data, f.split, f.data_flags);
  cmd->add_option("--count", f.count, "Number of images to attack")->capture_default_str();
  cmd->add_option("--offset", f.offset, "Index of the first image")->capture_default_str();
  add_batch_flag(cmd, f.batch);
  cmd->add_option("--eps", f.eps, "Budget on the [0,1] scale (fractions allowed: 8/255): l_inf; an l2 radius for APGD with --norm 2")->capture_default_str();
  cmd->add_option("--alpha", f.alpha,
                  "Step size (fractions allowed); default: 2/255 for the baselines, eps/steps x step factor for SD-SGSM");
  cmd->add_option("--steps", f.steps,
                  "Iterations; default: each attack's own (FGSM 1, the l_inf attacks 10, DeepFool 50, C&W 100 per "
                  "binary step, DDN and FMN 100)");
  cmd->add_option("--refine", f.refine,
                  "After the attack, up to this many more model passes per image shrinking each adversarial that "
                  "fools once rounded to 8-bit pixels, keeping it fooling once rounded (quantised DDN steps from "
                  "the rounded adversarial); 0: off")
      ->capture_default_str();
  cmd->add_option("--refine-step", f.refine_step, "--refine: the step, times the perturbation's current l2 norm")
      ->capture_default_str();
  cmd->add_option("--refine-gamma", f.refine_gamma, "--refine: the norm's update factor eps * (1 -+ gamma)")
      ->capture_default_str();
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
  add_sdsgsm_flags(cmd, f.sd, kAllSdFlags, "SD-SGSM (sdsgsm, sd-ifgsm, sgsm)");
  auto* m = "Minimum-norm attacks (deepfool, cw, ddn, fmn; unbounded: --eps does not apply, --steps does)";
  cmd->add_option("--norm", f.norm,
                  "Distance minimised by deepfool and fmn: 2 or inf (default 2; cw and ddn: 2 only); the ball of "
                  "apgd-ce, apgd-dlr, apgd-t (default inf; with 2, --eps is an l2 radius)")
      ->group(m);
  cmd->add_option("--candidates", f.mn.candidates, "deepfool: classes considered, the clean top-k (0: all)")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--overshoot", f.mn.overshoot, "deepfool: overshoot of each step past the boundary")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--binary-steps", f.mn.binary_steps, "cw: binary-search steps over the constant c (x --steps Adam steps)")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--initial-const", f.mn.initial_const, "cw: c of the first binary-search step")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--confidence", f.mn.confidence, "cw: confidence kappa (logit margin of a success)")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--learning-rate", f.learning_rate,
                  "Step size; default: cw 0.01 (Adam), ddn 1 (l2 step), fmn 1 (x the current norm); ddn and fmn "
                  "anneal it to 1/100")
      ->group(m);
  cmd->add_option("--norm-gamma", f.mn.norm_gamma, "ddn, fmn: the norm's update factor eps * (1 -+ gamma)")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--initial-norm", f.mn.initial_norm, "ddn: the l2 norm of the first step")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--levels", f.mn.levels,
                  "Values per channel of the grid a saved image lies on (256: 8-bit pixels; 0: none): ddn rounds each "
                  "iterate to it, deepfool, cw and fmn push their adversarials onto it")
      ->capture_default_str()
      ->group(m);
  cmd->add_option("--restarts", f.restarts, "apgd-ce, apgd-dlr, apgd-t: random restarts (per target) for the images still "
                  "not fooled")
      ->capture_default_str()
      ->group("APGD (apgd-ce, apgd-dlr, apgd-t) and Square (square; --steps: queries)");
  cmd->add_option("--sheet", f.sheet, "Images in the PNG sheet (0: none)")->capture_default_str();
  cmd->add_flag("--no-adversarial", f.no_adversarial, "Do not write the adversarial images (adversarial/ shards)");
  cmd->add_flag("--resume", f.resume,
                "Continue an interrupted run of the same command (its .OUT.partial folder); a changed configuration "
                "is refused");
  cmd->add_flag("--restart", f.restart, "Discard an interrupted run's partial output and start over");
  cmd->add_flag("--min-eps", f.min_eps,
                "Also find each image's smallest eps (up to --eps) at which the attack fools it, by bisection; "
                "writes min_eps.csv and min_eps.json (fixed-eps attacks)");
  cmd->add_option("--min-eps-rounds", f.min_eps_rounds, "Bisection rounds of --min-eps (resolution eps / 2^rounds)")
      ->capture_default_str();
  cmd->add_option("--out", f.out, "Output folder (written as .OUT.partial beside it, renamed when complete)")->required();
}

/// A fixed-eps attack at another budget, with the same flags (its step rule decides alpha).
std::unique_ptr<Attack> at_eps(const std::string& name, const AttackOptions& o, const AttackFlags& f, double eps) {
  return make_attack(name, AttackOptions(o).set_eps(eps), f.sd);
}

/// Whether an attack has a budget to vary (the minimum-norm attacks have none).
bool bounded(const Attack& a) { return attack_info(a.name()).bounded; }

/// --min-eps for one attack: writes min_eps.csv into `dir` and returns its summary.
nlohmann::json write_min_eps(Classifier& model, const Dataset& data, const std::string& name, const AttackOptions& o,
                             const AttackFlags& f, const AttackRunResult& r, const fs::path& dir,
                             const torch::Device& device) {
  MinEpsOptions mo;
  mo.device = device;
  mo.eps_max = o.eps;
  mo.rounds = f.min_eps_rounds;
  mo.batch_size = f.batch;
  mo.first_index = f.offset;
  auto e = minimal_eps(model, data, [&](double eps) { return at_eps(name, o, f, eps); }, mo);
  write_file_atomic(dir / "min_eps.csv", min_eps_csv(r.index, r.label, e));
  auto s = min_eps_summary(e, r.clean_pred.eq(r.label), mo);
  write_file_atomic(dir / "min_eps.json", s.dump(2) + "\n");
  return s;
}

/// The options of attack `name` (its own default steps unless --steps is given).
AttackOptions to_options(const AttackFlags& f, const std::string& name) {
  AttackOptions o;
  o.set_eps(parse_number(f.eps, "--eps"))
      .set_steps(f.steps == AttackFlags::kAttackDefault ? attack_info(name).default_steps : f.steps)
      .set_refine(f.refine)
      .set_refine_step(f.refine_step)
      .set_refine_gamma(f.refine_gamma)
      .set_early_stop(f.early_stop_8bit && !f.early_stop ? std::optional<bool>(true) : f.early_stop)
      .set_early_stop_8bit(f.early_stop_8bit)
      .set_seed(f.seed)
      .set_targeted(parse_target_mode(f.targeted))
      .set_target_label(f.target_label);
  if (!f.alpha.empty()) o.set_alpha(parse_number(f.alpha, "--alpha"));
  if (!f.decay.empty()) o.set_decay(parse_number(f.decay, "--decay"));
  const AttackFamily family = attack_info(name).family;
  if (!f.norm.empty() && (family == AttackFamily::Adaptive || family == AttackFamily::ScoreBased)) {
    o.set_norm(f.norm.empty() ? Norm::L2 : parse_norm(f.norm));
  }
  o.set_restarts(f.restarts);
  o.validate();
  return o;
}

MinNormOptions to_minnorm_options(const AttackFlags& f) {
  MinNormOptions o = f.mn;
  o.set_norm(f.norm.empty() ? Norm::L2 : parse_norm(f.norm));
  if (!f.learning_rate.empty()) o.set_learning_rate(parse_number(f.learning_rate, "--learning-rate"));
  o.validate();
  return o;
}

struct Prepared {
  std::shared_ptr<Classifier> model;
  std::unique_ptr<ImageSource> data;
  DataOptions data_options;  ///< how `data` was read (to read it again as a Dataset)
  RunOptions run;
  nlohmann::json info;         ///< deterministic: goes into metrics.json
  nlohmann::json fingerprint;  ///< what a resume must match (per attack: add its config)
};

Prepared prepare(const AttackFlags& f, const Common& common) {
  if (f.count < 1) throw Error(fmt::format("--count must be >= 1 (got {})", f.count));
  if (f.sheet < 0) throw Error(fmt::format("--sheet must be >= 0 (got {})", f.sheet));
  Prepared p;
  p.run.batch_size = f.batch;
  p.run.progress = !common.quiet;
  p.run.first_index = f.offset;
  p.run.validate();
  p.run.device = parse_device(common.device);
  p.model = load_classifier(f.model);
  p.model->to(p.run.device);
  p.data_options = data_options(f.data_flags, *p.model, p.run.device);
  p.data = open_image_source(f.data, to_split(f.split), f.offset, f.count, p.data_options);
  p.info["model"] = p.model->name();
  p.info["model_kind"] = p.model->kind();
  p.info["data"] = p.data->source();
  p.info["split"] = f.split;
  p.info["offset"] = f.offset;
  p.info["count"] = p.data->size();
  p.info["batch_size"] = f.batch;
  p.info["version"] = version_string();
  record_data_flags(p.info, f.data_flags, p.data->classes());
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
std::string comparison_figures(const fs::path& dir, const std::vector<AttackRunResult>& results, uint64_t seed,
                               const std::vector<EpsCurve>& eps) {
  std::vector<std::string> labels;
  std::vector<const AttackRunResult*> runs;
  for (const auto& r : results) {
    labels.push_back(r.attack);
    runs.push_back(&r);
  }
  BootstrapOptions b;
  b.seed = seed;
  return fmt::format("\nPaired l2 per image (over the images both attacks fool; bootstrap {} resamples, seed {}):\n\n{}",
                     b.resamples, b.seed, write_comparison_figures(dir, labels, runs, eps, b));
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
      "tanh), sd-ifgsm (DDI map + sign), sgsm (uniform + tanh), all within the l_inf budget --eps;\n"
      "and the minimum-norm attacks, unbounded (they minimise the perturbation; --eps does not\n"
      "apply): deepfool (l2 or l_inf), cw (Carlini-Wagner l2), ddn (l2), fmn (l2 or l_inf).");
  auto f = std::make_shared<AttackFlags>();
  auto name = std::make_shared<std::string>(kIfgsm);
  cmd->add_option("--attack", *name, "Attack name")->capture_default_str();
  add_attack_flags(cmd, *f);
  // Read by main before parsing (expand_config): declared for --help and for its error messages.
  auto config = std::make_shared<std::string>();
  cmd->add_option("--config", *config,
                  "Repeat a run: every option (model, data, images, attack and its settings) from the run's "
                  "metrics.json; flags given beside it win (e.g. a new --out)");
  cmd->callback([&run, &common, f, name] {
    run = [&common, f, name] {
      auto attack = make_attack(*name, to_options(*f, *name), f->sd, to_minnorm_options(*f));
      Prepared p = prepare(*f, common);
      nlohmann::json fp = p.fingerprint;
      fp["attack_config"] = attack->config();
      PartialFolder folder(f->out, fp, f->resume, f->restart);
      RunOutput out = run_output(p, *f, *attack, folder.work());
      AttackRunResult r = run_attack(*p.model, *p.data, *attack, p.run, &out);
      if (f->min_eps && dist::is_root()) {
        if (!bounded(*attack)) throw Error(fmt::format("--min-eps: {} has no eps budget to minimise", *name));
        Dataset d = open_dataset(f->data, to_split(f->split), f->offset, f->count, p.data_options);
        auto s = write_min_eps(*p.model, d, *name, to_options(*f, *name), *f, r, folder.work(), p.run.device);
        if (s["median"].is_null()) {
          fmt::print("minimal eps: no image fooled within eps {:.5f}\n", s["eps_max"].get<double>());
        } else {
          fmt::print("minimal eps: median {:.3f}/255, {:.2f}% fooled within eps (min_eps.csv)\n",
                     s["median_255"].get<double>(), 100 * s["fooled_within_eps_max"].get<double>());
        }
      }
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
  cmp->add_option("--epsilons", fc->epsilons,
                  "Also run each fixed-eps attack at each of these eps (comma-separated, fractions allowed; one result "
                  "per eps, as Foolbox's epsilons): the ASR-against-eps curves in curves.csv/json");
  cmp->callback([&run, &common, fc, names] {
    run = [&common, fc, names] {
      std::vector<std::unique_ptr<Attack>> attacks;
      // The shared options (eps, early stop, ...); each attack takes its own default steps.
      AttackOptions o = to_options(*fc, kIfgsm);
      const MinNormOptions mn = to_minnorm_options(*fc);
      std::vector<double> epsilons;
      for (const auto& e : split_list(fc->epsilons)) {
        epsilons.push_back(parse_number(e, "--epsilons"));
        AttackOptions(o).set_eps(epsilons.back()).validate();
      }
      const auto items = split_list(*names);
      for (const auto& item : items) {
        attacks.push_back(make_attack(item, to_options(*fc, item), fc->sd, mn));
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
      std::vector<EpsCurve> curves;
      nlohmann::json min_eps = nlohmann::json::object();
      if (!epsilons.empty() || fc->min_eps) {
        // The eps runs are collective under mpirun (every rank attacks its batches); the minimal
        // eps search runs on rank 0 alone, which holds every result.
        Dataset d = open_dataset(fc->data, to_split(fc->split), fc->offset, fc->count, p.data_options);
        RunOptions quiet = p.run;
        quiet.progress = false;
        for (size_t i = 0; i < attacks.size(); ++i) {
          if (!bounded(*attacks[i])) continue;
          if (!epsilons.empty()) {
            EpsCurve c;
            c.attack = attacks[i]->name();
            for (double e : epsilons) {
              auto r = run_attack(*p.model, d, *at_eps(items[i], to_options(*fc, items[i]), *fc, e), quiet);
              if (!dist::is_root()) continue;  // rank 0 holds the results
              auto s = r.summary();
              c.eps.push_back(e);
              c.asr.push_back(s["float"]["asr"].get<double>());
              c.asr_8bit.push_back(s["rounded_8bit"]["asr"].get<double>());
            }
            curves.push_back(c);
          }
          if (fc->min_eps && dist::is_root()) {
            min_eps[attacks[i]->name()] =
                write_min_eps(*p.model, d, items[i], o, *fc, results[i], folder.work() / attacks[i]->name(), p.run.device);
          }
        }
        if (fc->min_eps && dist::is_root()) write_file_atomic(folder.work() / "min_eps.json", min_eps.dump(2) + "\n");
      }
      if (dist::is_root()) {
        std::string table = comparison_markdown(reports);
        nlohmann::json j = p.info;
        j["attack_options"] = o.to_json();
        j["results"] = reports;
        j["ranks"] = dist::size();
        j["threads_per_rank"] = torch::get_num_threads();
        write_file_atomic(folder.work() / "compare.json", j.dump(2) + "\n");
        std::string header = fmt::format("{} on {} images of {} (eps {:.5f}, {} steps, early stop {}):\n\n",
                                         p.model->name(), p.data->size(), p.data->source(), o.eps,
                                         fc->steps == AttackFlags::kAttackDefault ? std::string("each attack's own")
                                                                                  : std::to_string(fc->steps),
                                         o.early_stop ? (*o.early_stop ? "on" : "off") : "per attack");
        const std::string paired = comparison_figures(folder.work(), results, fc->seed, curves);
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
