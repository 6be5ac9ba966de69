#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/compare.hpp"
#include "sdsgsm/curves.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/eps_runs.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/run_info.hpp"
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
  add_count_flag(cmd, f.count, "Number of images to attack");
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
  struct Sheet {
    int64_t sheet = 0;
  };
  static const OptionField<Sheet> sheet = option("sheet", &Sheet::sheet, "Images in the PNG sheet").at_least(0);
  if (std::string e = sheet.check(Sheet{f.sheet}); !e.empty()) throw Error(e);
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
  p.info = run_info(*p.model, *p.data, f.split, f.offset, f.batch);
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
  auto name = std::make_shared<std::string>(kSdsgsm);
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
      const RunSummary st = r.stats();  // n/a for a figure over no image
      fmt::print("{} on {} ({} images): clean accuracy {:.2f}%, ASR {} (8-bit {}), l2 {}, SSIM {}, PSNR {} dB, "
                 "{:.0f} img/s\nwrote {}\n",
                 r.attack, p.model->name(), r.size(), 100 * st.clean_accuracy,
                 figure_or_na(100 * st.float_stats.asr, "{:.2f}%"), figure_or_na(100 * st.rounded_8bit.asr, "{:.2f}%"),
                 figure_or_na(st.float_stats.l2_mean, "{:.3f}"), figure_or_na(st.float_stats.ssim_mean, "{:.4f}"),
                 figure_or_na(st.float_stats.psnr_mean, "{:.2f}"), s["images_per_second"].get<double>(), f->out);
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
      CompareJob job;
      // The shared options (eps, early stop, ...); each attack takes its own default steps.
      const AttackOptions o = to_options(*fc, kIfgsm);
      const MinNormOptions mn = to_minnorm_options(*fc);
      for (const auto& e : split_list(fc->epsilons)) {
        job.epsilons.push_back(parse_number(e, "--epsilons"));
        AttackOptions(o).set_eps(job.epsilons.back()).validate();
      }
      for (const auto& item : split_list(*names)) {
        CompareAttack a;
        a.attack = make_attack(item, to_options(*fc, item), fc->sd, mn);
        for (const auto& b : job.attacks) {
          if (b.attack->name() == a.attack->name()) {
            throw Error(fmt::format("--attacks lists '{}' twice", a.attack->name()));
          }
        }
        if (bounded(*a.attack)) {
          a.curve_at = [item, oi = to_options(*fc, item), fc](double e) { return at_eps(item, oi, *fc, e); };
          a.min_eps_at = [item, o, fc](double e) { return at_eps(item, o, *fc, e); };
        }
        job.attacks.push_back(std::move(a));
      }
      if (job.attacks.empty()) throw Error("--attacks names no attack");
      Prepared p = prepare(*fc, common);
      job.model = p.model.get();
      job.data = p.data.get();
      job.dataset = [&] { return open_dataset(fc->data, to_split(fc->split), fc->offset, fc->count, p.data_options); };
      job.run = p.run;
      job.info = p.info;
      job.fingerprint = p.fingerprint;
      job.shared = o;
      job.steps = fc->attack.steps == AttackFlags::kAttackDefault ? std::string("each attack's own")
                                                                  : std::to_string(fc->attack.steps);
      job.min_eps = fc->min_eps;
      job.min_eps_rounds = fc->min_eps_rounds;
      job.seed = fc->attack.seed;
      job.out = fc->out;
      job.resume = fc->resume;
      job.restart = fc->restart;
      job.adversarial = !fc->no_adversarial;
      job.sheet = fc->sheet;
      const std::string report = run_compare(job);
      if (dist::is_root()) fmt::print("{}wrote {}\n", report, fc->out);
    };
  });
}

}  // namespace sdsgsm::cli
