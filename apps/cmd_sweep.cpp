#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/sweep.hpp"

namespace sdsgsm::cli {
namespace {

std::vector<double> numbers(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  for (const auto& s : split_list(text)) out.push_back(parse_number(s, flag));
  return out;
}

std::vector<int64_t> integers(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  for (double v : numbers(text, flag)) {
    if (v != static_cast<double>(static_cast<int64_t>(v))) {
      throw Error(fmt::format("{}: '{}' is not a whole number", flag, text));
    }
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

/// The evaluation images `reproduce` reports on: the first 1,000 CIFAR-10 test images.
constexpr int64_t kEvaluationImages = 1000;

}  // namespace

void add_sweep_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "sweep",
      "Tune SD-SGSM (or a baseline, --variant) on a tuning split: run every combination of the listed values (comma-separated)\n"
      "and pick by the rule 'ASR >= 99.9%, then the highest SSIM' (also within the configurations\n"
      "whose DDI costs no more than their iterations). DDI maps are computed once per window grid.\n"
      "Writes sweep.md and sweep.json to --out. Refuses the evaluation images (the first 1,000 test\n"
      "images, which 'reproduce' reports on).\n"
      "Example: sdsgsm sweep --window 4,8,16 --rho 0.1,0.25,0.5 --lambda 0.3,0.5,0.7 --beta 0.5,1,2 --out docs/sweep");
  struct Opts {
    std::string model = "resnet20", data = "data/cifar10", split = "test", variant = kSdsgsm, out;
    int64_t count = 1000, offset = 5000, batch = 128, steps = 10;
    std::string eps = "8/255", window = "4,8,16", stride, rho = "0.25", lambda = "0.5", map = "hard", beta = "1",
                step_factor = "2.5", decay = "0";
    uint64_t seed = 0;
    std::string asr_basis = "both";
    bool early_stop_8bit = false;
    std::optional<bool> early_stop;
    SdsgsmOptions base;
    DataFlags data_flags;
  };
  auto o = std::make_shared<Opts>();
  add_model_data_flags(cmd, o->model, o->data, o->split, o->data_flags);
  cmd->add_option("--offset", o->offset, "Index of the first tuning image")->capture_default_str();
  add_count_flag(cmd, o->count, "Tuning images");
  add_batch_flag(cmd, o->batch);
  cmd->add_option("--variant", o->variant,
                  "The attack to tune: sdsgsm, sd-ifgsm, sgsm, or a baseline (ifgsm, mifgsm, nifgsm, pgd: their step is\n"
                  "alpha = eps / steps x step factor, and --decay applies to mifgsm and nifgsm)")
      ->check(CLI::IsMember(sweep_variants()))
      ->capture_default_str();
  cmd->add_flag_callback("--early-stop", [o] { o->early_stop = true; },
                         "Freeze each sample as soon as it succeeds (default for the SD-SGSM family)");
  cmd->add_flag_callback("--no-early-stop", [o] { o->early_stop = false; },
                         "Attack every sample for all steps (default for the baselines)");
  cmd->add_option("--eps", o->eps, "l_inf budget")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Iterations")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str();
  cmd->add_option("--window", o->window, "DDI window sides k (list)")->capture_default_str();
  cmd->add_option("--stride", o->stride,
                  "DDI strides s (list of pixels, or k and k/D relative to the window; s > k skipped; default: k)");
  cmd->add_option("--rho", o->rho, "Domain fractions (list)")->capture_default_str();
  cmd->add_option("--lambda", o->lambda, "Background weights (list)")->capture_default_str();
  cmd->add_option("--map", o->map, "Allocation maps: hard, soft (list)")->capture_default_str();
  cmd->add_option("--beta", o->beta, "tanh sharpness values (list)")->capture_default_str();
  cmd->add_option("--step-factor", o->step_factor, "alpha = eps / steps x these (list)")->capture_default_str();
  cmd->add_option("--decay", o->decay, "Momentum decays, 0 = off (list)")->capture_default_str();
  cmd->add_option("--fill", o->base.ddi.fill, "Zero-out fill: zero, mean or blur")->capture_default_str();
  cmd->add_option("--score", o->base.ddi.score, "Window score: prob, margin or loss")->capture_default_str();
  cmd->add_option("--gamma", o->base.gamma, "Soft map exponent")->capture_default_str();
  cmd->add_option("--ddi-batch", o->base.ddi.max_batch, "Occluded images per forward call")->capture_default_str();
  cmd->add_option("--asr-basis", o->asr_basis,
                  "Which ASR must reach 99.9%: float, 8bit (after rounding to 8-bit pixels) or both")
      ->check(CLI::IsMember({"float", "8bit", "both"}))
      ->capture_default_str();
  cmd->add_flag("--early-stop-8bit", o->early_stop_8bit,
                "Freeze a sample only when its adversarial rounded to 8-bit pixels succeeds too");
  cmd->add_option("--out", o->out, "Output folder")->required();
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      if (o->split == "test" && o->offset < kEvaluationImages) {
        throw Error(fmt::format("--offset {}: the sweep would tune on the evaluation images (test images 0-{}, which "
                                "'reproduce' reports on); tune on another range, e.g. --offset 5000",
                                o->offset, kEvaluationImages - 1));
      }
      SweepGrid grid;
      grid.window = integers(o->window, "--window");
      for (const auto& item : split_list(o->stride)) {
        if (item == "k") {
          grid.stride.push_back(-1);
        } else if (item.rfind("k/", 0) == 0) {
          auto d = integers(item.substr(2), "--stride");
          if (d[0] < 1) throw Error(fmt::format("--stride: '{}' must divide k by a positive number", item));
          grid.stride.push_back(-d[0]);
        } else {
          struct Stride {
            int64_t stride = 0;
          };
          static const OptionField<Stride> pixels = option("stride", &Stride::stride, "DDI stride").at_least(1);
          auto v = integers(item, "--stride");
          if (std::string e = pixels.check(Stride{v[0]}); !e.empty()) throw Error(e);
          grid.stride.push_back(v[0]);
        }
      }
      grid.rho = numbers(o->rho, "--rho");
      grid.lambda = numbers(o->lambda, "--lambda");
      grid.map = split_list(o->map);
      grid.beta = numbers(o->beta, "--beta");
      grid.step_factor = numbers(o->step_factor, "--step-factor");
      grid.decay = numbers(o->decay, "--decay");
      SweepOptions so;
      so.variant = o->variant;
      so.asr_basis = o->asr_basis;
      so.attack.set_eps(parse_number(o->eps, "--eps")).set_steps(o->steps).set_seed(o->seed);
      so.attack.early_stop = o->early_stop;
      if (o->early_stop_8bit) so.attack.set_early_stop(true).set_early_stop_8bit(true);
      so.attack.validate();
      for (double d : grid.decay) AttackOptions().set_decay(d).validate();
      so.base = o->base;
      so.run.batch_size = o->batch;
      so.run.progress = false;
      so.run.first_index = o->offset;
      so.run.validate();
      if (is_sdsgsm_family(o->variant)) grid.expand(so.base);  // an invalid grid fails before the model loads
      check_output_dir(o->out);
      auto model = load_classifier(o->model);
      Dataset data = open_dataset(o->data, to_split(o->split), o->offset, o->count, data_options(o->data_flags, *model, torch::kCPU));
      std::string command = fmt::format(
          "sdsgsm sweep --model {} --split {} --offset {} --count {} --variant {} --eps {} --steps {} --window {}{} "
          "--rho {} --lambda {} --map {} --beta {} --step-factor {} --decay {} --fill {} --score {} --asr-basis {}{}{} "
          "--out {}",
          o->model, o->split, o->offset, data.size(), o->variant, o->eps, o->steps, o->window,
          o->stride.empty() ? "" : " --stride " + o->stride, o->rho, o->lambda, o->map, o->beta, o->step_factor,
          o->decay, o->base.ddi.fill, o->base.ddi.score, o->asr_basis,
          o->early_stop ? (*o->early_stop ? " --early-stop" : " --no-early-stop") : "",
          o->early_stop_8bit ? " --early-stop-8bit" : "",
          o->out);
      spdlog::info("sweep: {} on {} images ({})", o->variant, data.size(), data.source);
      auto rows = run_sweep(*model, data, grid, so, [&](const SweepRow& r, size_t i, size_t n) {
        if (common.quiet) return;
        const auto& f = r.summary["float"];
        spdlog::info("[{}/{}] {}: ASR {:.2f}% (8-bit {:.2f}%) SSIM {:.4f} l2 {:.3f} iters {:.2f} ({:.1f}s; DDI {:.1f}s)", i,
                     n, r.describe(), 100 * f["asr"].get<double>(), 100 * r.summary["rounded_8bit"]["asr"].get<double>(),
                     f["ssim_mean"].get<double>(), f["l2_mean"].get<double>(), r.summary["iterations_mean"].get<double>(),
                     r.iteration_seconds, r.ddi_seconds);
      });
      std::string md = sweep_markdown(rows, command, o->asr_basis);
      write_output_dir(o->out, [&](const fs::path& tmp) {
        nlohmann::json j = {{"command", command}, {"model", model->name()}, {"data", data.source},
                            {"offset", o->offset}, {"count", data.size()}, {"grid", grid.to_json()},
                            {"attack_options", so.attack.to_json()}, {"variant", o->variant},
                            {"asr_basis", o->asr_basis},
                            {"threads", torch::get_num_threads()}, {"version", version_string()}};
        for (bool cost : {false, true}) {
          int64_t c = choose_row(rows, cost);
          j[cost ? "chosen_within_cost" : "chosen"] = c < 0 ? nlohmann::json() : rows[c].to_json();
        }
        for (const auto& r : rows) j["rows"].push_back(r.to_json());
        write_file_atomic(tmp / "sweep.json", j.dump(2) + "\n");
        write_file_atomic(tmp / "sweep.md", md);
      });
      auto head = md.substr(0, std::min(md.find("## DDI cost"), md.find("## Every configuration")));
      fmt::print("{}wrote {}\n", head, o->out);
    };
  });
}

}  // namespace sdsgsm::cli
