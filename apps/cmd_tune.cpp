#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/tuning.hpp"

namespace sdsgsm::cli {

void add_tune_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "tune",
      "Tune every attack of the comparison by one rule (ASR >= 99.9% float and 8-bit, then the highest SSIM) on\n"
      "the tuning images (test images 5000-5999), with the same eps and iterations, in two regimes: fixed\n"
      "iterations and early stop. Tunes the step of I-FGSM, MI-FGSM, NI-FGSM and PGD (and the decay of the\n"
      "momentum ones) and the SD-SGSM family at a coarse (k 16) and a fine (k 4 s 2) DDI grid.\n"
      "Writes tuned.json and tuning.md to --out; 'reproduce' reads models/NAME.tuned.json beside a zoo\n"
      "model's weights (copy tuned.json there).\n"
      "Example: sdsgsm tune --model vgg7bn --out runs/tune-vgg7bn");
  struct Opts {
    std::string model = "resnet20", data = "data/cifar10", out, eps = "8/255", only, regimes = "fixed,early_stop", from;
    int64_t count = 1000, offset = 5000, batch = 128, steps = 10;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--model", o->model, "Zoo name or model file")->capture_default_str();
  cmd->add_option("--data", o->data, "CIFAR-10 binary folder")->capture_default_str();
  cmd->add_option("--offset", o->offset, "Index of the first tuning image (test split)")->capture_default_str();
  add_count_flag(cmd, o->count, "Tuning images");
  add_batch_flag(cmd, o->batch);
  cmd->add_option("--eps", o->eps, "l_inf budget")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Iterations (every attack)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str();
  cmd->add_option("--only", o->only, "Comma-separated keys of the plan to tune (default: all)");
  cmd->add_option("--regimes", o->regimes, "fixed, early_stop or both (comma-separated)")->capture_default_str();
  cmd->add_option("--from", o->from, "Write tuning.md (and a copy of tuned.json) from this tuned.json; tune nothing");
  cmd->add_option("--out", o->out, "Output folder (tuned.json, tuning.md)")->required();
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      if (!o->from.empty()) {
        nlohmann::json tuned;
        try {
          tuned = nlohmann::json::parse(read_file(o->from));
          if (!tuned.contains("regimes")) throw Error("no 'regimes'");
        } catch (const std::exception& e) {
          throw Error(fmt::format("--from {}: not a tuned.json written by 'sdsgsm tune' ({})", o->from, e.what()));
        }
        const std::string md = tuning_markdown(tuned, tuned.value("command", std::string("sdsgsm tune")));
        write_output_dir(o->out, [&](const fs::path& tmp) {
          write_file_atomic(tmp / "tuned.json", tuned.dump(1) + "\n");
          write_file_atomic(tmp / "tuning.md", md);
        });
        fmt::print("wrote {}\n", o->out);
        return;
      }
      check_batch_size(o->batch);
      if (o->offset < 1000) {
        throw Error(fmt::format("--offset {}: tuning would use the evaluation images (test images 0-999, which "
                                "'reproduce' reports on); tune on another range, e.g. --offset 5000",
                                o->offset));
      }
      TuningOptions to;
      to.attack.set_eps(parse_number(o->eps, "--eps")).set_steps(o->steps).set_seed(o->seed);
      to.attack.validate();
      to.only = split_list(o->only);
      to.regimes = split_list(o->regimes);
      if (to.regimes.empty()) throw Error("--regimes names no regime");
      to.run.batch_size = o->batch;
      to.run.progress = false;
      to.run.first_index = o->offset;
      check_output_dir(o->out);
      auto model = load_classifier(o->model);
      Dataset data = open_dataset(o->data, Split::Test, o->offset, o->count);
      const std::string command =
          fmt::format("sdsgsm tune --model {} --offset {} --count {} --eps {} --steps {} --seed {}{} --regimes {} --out {}",
                      o->model, o->offset, data.size(), o->eps, o->steps, o->seed,
                      o->only.empty() ? "" : " --only " + o->only, o->regimes, o->out);
      auto tuned = run_tuning(*model, data, to,
                              [&](const std::string& regime, const TuningItem& item, const SweepRow& r, size_t i,
                                  size_t n) {
                                if (common.quiet) return;
                                const auto& f = r.summary["float"];
                                spdlog::info("{} {} [{}/{}] {}: ASR {:.2f}% (8-bit {:.2f}%) SSIM {:.4f} l2 {:.3f} "
                                             "iters {:.2f}",
                                             regime, item.key, i, n, r.describe(), 100 * f["asr"].get<double>(),
                                             100 * r.summary["rounded_8bit"]["asr"].get<double>(),
                                             f["ssim_mean"].get<double>(), f["l2_mean"].get<double>(),
                                             r.summary["iterations_mean"].get<double>());
                              });
      tuned["command"] = command;
      tuned["model"] = model->name();
      tuned["model_md5"] = model_checksum(o->model);
      tuned["data"] = data.source;
      tuned["offset"] = o->offset;
      tuned["count"] = data.size();
      tuned["attack_options"] = to.attack.to_json();
      tuned["rule"] = {{"min_asr", to.min_asr}, {"asr_basis", to.asr_basis}};
      tuned["version"] = version_string();
      const std::string md = tuning_markdown(tuned, command);
      write_output_dir(o->out, [&](const fs::path& tmp) {
        write_file_atomic(tmp / "tuned.json", tuned.dump(1) + "\n");
        write_file_atomic(tmp / "tuning.md", md);
      });
      fmt::print("{}\nwrote {}\n", md.substr(0, md.find("## Every configuration")), o->out);
    };
  });
}

}  // namespace sdsgsm::cli
