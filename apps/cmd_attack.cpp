#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "sdsgsm/tables.hpp"

namespace sdsgsm::cli {
namespace {

/// Flags shared by `attack` and `compare`: the run's (RunOptions), and the attacks' option sets
/// (AttackOptions, SD-SGSM's, MinNormOptions), whose flags their declarations give.
struct AttackFlags {
  std::string model = "resnet20";
  std::string data = "data/cifar10";
  std::string split = "test";
  int64_t count = 1000, offset = 0, batch = 128, sheet = 8;
  /// kAttackDefault: each attack's own default (the registry's).
  static constexpr int64_t kAttackDefault = std::numeric_limits<int64_t>::min();
  AttackOptions attack = AttackOptions().set_steps(kAttackDefault);
  std::string out;
  bool resume = false, restart = false, no_adversarial = false;
  std::string epsilons;  ///< compare: eps values of the ASR-against-eps curves
  bool min_eps = false;  ///< per-sample minimal eps by bisection
  int min_eps_rounds = 6;
  SdsgsmOptions sd;
  MinNormOptions mn;
  DataFlags data_flags;  ///< --classes --resize --crop
  OptionFlags flags;     ///< the option sets' flags
};

void add_attack_flags(CLI::App* cmd, AttackFlags& f) {
  add_model_data_flags(cmd, f.model, f.data, f.split, f.data_flags);
  cmd->add_option("--count", f.count, "Number of images to attack")->capture_default_str();
  cmd->add_option("--offset", f.offset, "Index of the first image")->capture_default_str();
  add_batch_flag(cmd, f.batch);
  bind_attack_settings(f.flags, f);
  f.flags.add_to(cmd);
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

/// --min-eps for one attack: writes min_eps.csv and min_eps.json into `dir` and returns the summary.
nlohmann::json write_min_eps(Classifier& model, const Dataset& data, const std::string& name, const AttackOptions& o,
                             const AttackFlags& f, const AttackRunResult& r, const fs::path& dir, const RunOptions& run) {
  auto s = run_min_eps(model, data, [&](double eps) { return at_eps(name, o, f, eps); }, r, o.eps, f.min_eps_rounds, run, dir);
  write_file_atomic(dir / "min_eps.json", s.dump(2) + "\n");
  return s;
}

/// The options of attack `name`: its own default steps unless --steps is given, early stop with
/// --early-stop-8bit, and the fields of a word two sets share (--norm) only where they apply.
AttackOptions to_options(const AttackFlags& f, const std::string& name) {
  const AttackInfo& info = attack_info(name);
  AttackOptions o = f.attack;
  if (o.steps == AttackFlags::kAttackDefault) o.set_steps(info.default_steps);
  if (o.early_stop_8bit && !o.early_stop) o.set_early_stop(true);
  if (!AttackOptions::option_set().find("norm")->applies(family_bit(info.family))) o.norm.reset();
  o.validate();
  return o;
}

MinNormOptions to_minnorm_options(const AttackFlags& f) {
  f.mn.validate();
  return f.mn;
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
      "shared among the ranks.\n" +
          attack_help());
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
        auto s = write_min_eps(*p.model, d, *name, to_options(*f, *name), *f, r, folder.work(), p.run);
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
        for (size_t i = 0; i < attacks.size(); ++i) {
          if (!bounded(*attacks[i])) continue;
          if (!epsilons.empty()) {
            const AttackOptions oi = to_options(*fc, items[i]);
            curves.push_back(run_eps_curve(*p.model, d, attacks[i]->name(), epsilons,
                                           [&](double e) { return at_eps(items[i], oi, *fc, e); }, p.run));
          }
          if (fc->min_eps && dist::is_root()) {
            min_eps[attacks[i]->name()] =
                write_min_eps(*p.model, d, items[i], o, *fc, results[i], folder.work() / attacks[i]->name(), p.run);
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
                                         fc->attack.steps == AttackFlags::kAttackDefault ? std::string("each attack's own")
                                                                                  : std::to_string(fc->attack.steps),
                                         o.early_stop ? (*o.early_stop ? "on" : "off") : "per attack");
        const std::string paired = comparison_figures(folder.work(), results, fc->attack.seed, curves);
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
