// `sdsgsm robust`: robust accuracy under an AutoAttack-style sequence, with the masking checks.
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/robust_options.hpp"
#include "sdsgsm/robust_curve.hpp"
#include "sdsgsm/run_info.hpp"
#include "sdsgsm/robust_report.hpp"
#include "sdsgsm/run_folder.hpp"

namespace sdsgsm::cli {

void add_robust_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "robust",
      "Robust accuracy, AutoAttack's way: the per-image worst case over a sequence of attacks (default\n"
      "AutoAttack's standard version: APGD-CE, APGD-T and FAB-T with 9 target classes, then the\n"
      "gradient-free Square, in l_inf and l2; l1: APGD-CE, APGD-T, FAB-T; --ensemble plus and rand), each\n"
      "run only on the images still robust, with checks that warn of gradient masking (Square finding\n"
      "what the gradient attacks missed; more robust at more steps; robust at a huge eps). Writes to\n"
      "--out: robust.json (every figure, the checks, the configuration), robust.csv (per image: which\n"
      "attack fooled it), robust.md (the table), report.html and timing.json. Resumable (--resume).");
  struct Opts {
    std::string model = "resnet20", data = "data/cifar10", split = "test";
    DataFlags data_flags;
    int64_t count = 1000, offset = 0, batch = 128;
    std::string eps = "8/255", norm = "inf", attacks;
    RobustOptions r;
    OptionFlags flags;  ///< RobustOptions' flags, from their declarations (robust_options.hpp)
    std::string out;
    bool resume = false, restart = false;
  };
  auto o = std::make_shared<Opts>();
  add_model_data_flags(cmd, o->model, o->data, o->split, o->data_flags);
  add_count_flag(cmd, o->count, "Number of images");
  cmd->add_option("--offset", o->offset, "Index of the first image")->capture_default_str();
  add_batch_flag(cmd, o->batch);
  cmd->add_option("--eps", o->eps, "Budget on the [0,1] scale (fractions allowed: 8/255); an l2 or l1 radius with --norm 2 or 1. A "
                  "strictly increasing list (2/255,4/255,8/255) gives robust accuracy at each radius in one run (robust_curve.csv)")
      ->capture_default_str();
  cmd->add_option("--norm", o->norm, "The ball: inf, 2 or 1")->capture_default_str();
  cmd->add_option("--attacks", o->attacks,
                  "A custom sequence, comma-separated (standard: apgd-ce,apgd-t,fab-t,square; l1: apgd-ce,apgd-t,fab-t); any "
                  "bounded attack of `sdsgsm attack`");
  o->flags.bind(robust_option_set(), o->r, "");
  o->flags.add_to(cmd);
  cmd->add_option("--out", o->out, "Output folder (written as .OUT.partial beside it, renamed when complete)")->required();
  cmd->add_flag("--resume", o->resume, "Continue an interrupted run of the same command (its .OUT.partial folder)");
  cmd->add_flag("--restart", o->restart, "Discard an interrupted run's partial output and start over");
  cmd->callback([&run, &common, o, cmd] {
    const bool ensemble_flag = cmd->count("--ensemble") > 0;
    run = [&common, o, ensemble_flag] {
      RobustOptions r = o->r;
      // --attacks alone is the custom version; either is the user's choice (a randomised model stops).
      if (!ensemble_flag && !o->attacks.empty()) r.set_ensemble("custom");
      r.set_ensemble_given(ensemble_flag || !o->attacks.empty());
      const std::vector<double> radii = parse_eps_list(o->eps);
      r.set_eps(radii.back()).set_norm(parse_norm(o->norm)).set_batch_size(o->batch);
      r.set_first_index(o->offset).set_progress(!common.quiet);
      r.attacks = split_list(o->attacks);
      for (double e : radii) RobustOptions(r).set_eps(e).validate();
      r.device = parse_device(common.device);
      check_output_dir(o->out);
      auto model = load_classifier(o->model);
      model->to(r.device);
      auto data = open_image_source(o->data, to_split(o->split), o->offset, o->count,
                                    data_options(o->data_flags, *model, r.device));
      nlohmann::json info = run_info(*model, *data, o->split, o->offset, o->batch);
      record_data_flags(info, o->data_flags, data->classes());
      nlohmann::json fingerprint = info;
      fingerprint["model_md5"] = model_checksum(o->model);
      info["model_md5"] = fingerprint["model_md5"];
      fingerprint["robust_options"] = r.to_json();
      if (radii.size() > 1) fingerprint["robust_options"]["eps_list"] = radii;
      PartialFolder folder(o->out, fingerprint, o->resume, o->restart);
      if (radii.size() > 1) {
        run_robust_curve(*model, *data, r, radii, info, folder, o->eps);
        fmt::print("wrote {}\n", o->out);
        return;
      }
      auto t0 = std::chrono::steady_clock::now();
      RobustResult res = robust_accuracy(*model, *data, r, folder.work());
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::string title = fmt::format("Robust accuracy of {} at {} eps {} on {} images", model->name(),
                                            norm_label(r.norm), o->eps, res.images);
      write_robust_files(folder.work(), info, r.to_json(), res, title);
      nlohmann::json timing = {{"seconds", seconds}, {"threads", torch::get_num_threads()}, {"resumed", folder.resumed()}};
      for (const auto& s : res.stages) timing["attacks"][s.attack] = s.seconds;
      write_file_atomic(folder.work() / "timing.json", timing.dump(2) + "\n");
      write_report_html(folder.work() / "report.html", {folder.work()});
      folder.commit();
      fmt::print("{}", res.table(title));
      for (const auto& w : res.warnings()) spdlog::warn("{}", w);
      fmt::print("wrote {}\n", o->out);
    };
  });
}

}  // namespace sdsgsm::cli
