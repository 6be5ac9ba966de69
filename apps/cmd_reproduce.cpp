#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm::cli {
namespace {

struct Entry {
  std::string label, attack;
  std::optional<bool> early_stop;
  bool early_stop_8bit = false;
};

/// The paper's comparison: the baselines as defined and early-stopped, and the SD-SGSM family
/// (whose ablation rows are I-FGSM with early stop, SD only, SGSM only, SD-SGSM), and SD-SGSM
/// once more with the early stop decided on the 8-bit rounded adversarial.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = {
      {"FGSM", "fgsm", false},
      {"I-FGSM", "ifgsm", false},
      {"MI-FGSM", "mifgsm", false},
      {"I-FGSM (early stop)", "ifgsm", true},
      {"MI-FGSM (early stop)", "mifgsm", true},
      {"SD only (sd-ifgsm)", "sd-ifgsm", std::nullopt},
      {"SGSM only (sgsm)", "sgsm", std::nullopt},
      {"SD-SGSM", "sdsgsm", std::nullopt},
      {"SD-SGSM (8-bit early stop)", "sdsgsm", true, true},
  };
  return e;
}

/// A model name or label as one folder name: "I-FGSM (early stop)" -> "I_FGSM__early_stop_",
/// "/models/net.pt" -> "_models_net_pt".
std::string folder_name(std::string text) {
  for (char& c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return text;
}

std::string paper_table(const std::vector<nlohmann::json>& rows) {
  std::string out =
      "| attack | ASR | l2 | l_inf | SSIM | PSNR (dB) | ASR 8-bit | SSIM 8-bit | iters | DDI s | iterations s | img/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : rows) {
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    out += fmt::format("| {} | {:.2f}% | {:.3f} | {:.4f} | {:.4f} | {:.2f} | {:.2f}% | {:.4f} | {:.2f} | {:.1f} | {:.1f} | "
                       "{:.0f} |\n",
                       s["label"].get<std::string>(), 100 * f["asr"].get<double>(), f["l2_mean"].get<double>(),
                       f["linf_max"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                       100 * q["asr"].get<double>(), q["ssim_mean"].get<double>(), s["iterations_mean"].get<double>(),
                       s["ddi_seconds"].get<double>(), s["iteration_seconds"].get<double>(),
                       s["images_per_second"].get<double>());
  }
  return out;
}

std::string ablation_table(const std::vector<nlohmann::json>& rows) {
  std::string out =
      "| variant | allocation M | direction | ASR | ASR 8-bit | l2 | SSIM | iters |\n|---|---|---|---|---|---|---|---|\n";
  const std::vector<std::tuple<std::string, std::string, std::string>> order = {
      {"I-FGSM (early stop)", "uniform", "sign"},
      {"SD only (sd-ifgsm)", "DDI", "sign"},
      {"SGSM only (sgsm)", "uniform", "tanh"},
      {"SD-SGSM", "DDI", "tanh"}};
  for (const auto& [label, m, dir] : order) {
    for (const auto& s : rows) {
      if (s["label"] != label) continue;
      out += fmt::format("| {} | {} | {} | {:.2f}% | {:.2f}% | {:.3f} | {:.4f} | {:.2f} |\n", label, m, dir,
                         100 * s["float"]["asr"].get<double>(), 100 * s["rounded_8bit"]["asr"].get<double>(),
                         s["float"]["l2_mean"].get<double>(), s["float"]["ssim_mean"].get<double>(),
                         s["iterations_mean"].get<double>());
    }
  }
  return out;
}

}  // namespace

void add_reproduce_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "reproduce",
      "Reproduce the paper's comparison: on the first --count test images at --eps and --steps, FGSM,\n"
      "I-FGSM and MI-FGSM as defined and with early stop, and the SD-SGSM variants, for each model.\n"
      "Writes results.md and results.json (paper-style and ablation tables) and each run's full\n"
      "outputs to --out.");
  struct Opts {
    std::string models = "resnet20,vgg7bn", data = "data/cifar10", out = "runs/reproduce";
    int64_t count = 1000, offset = 0, batch = 128;
    std::string eps = "8/255";
    int64_t steps = 10;
    SdsgsmOptions sd;
    bool resume = false, restart = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--models", o->models, "Comma-separated models")->capture_default_str();
  cmd->add_option("--data", o->data, "CIFAR-10 binary folder")->capture_default_str();
  cmd->add_option("--count", o->count, "Test images")->capture_default_str();
  cmd->add_option("--offset", o->offset, "Index of the first test image")->capture_default_str();
  cmd->add_option("--batch-size", o->batch, "Images per batch")->capture_default_str();
  cmd->add_option("--eps", o->eps, "l_inf budget")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Iterations")->capture_default_str();
  cmd->add_option("--rho", o->sd.rho, "SD-SGSM domain fraction")->capture_default_str();
  cmd->add_option("--lambda", o->sd.lambda, "SD-SGSM background weight")->capture_default_str();
  cmd->add_option("--beta", o->sd.beta, "SD-SGSM tanh sharpness")->capture_default_str();
  cmd->add_option("--step-factor", o->sd.step_factor, "SD-SGSM alpha = eps / steps x this")->capture_default_str();
  cmd->add_option("--window", o->sd.ddi.window, "DDI window side")->capture_default_str();
  cmd->add_option("--stride", o->sd.ddi.stride, "DDI window stride")->capture_default_str();
  cmd->add_option("--map", o->sd.map, "SD-SGSM allocation map: hard or soft")->capture_default_str();
  cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue an interrupted run (finished attacks are kept, the one cut off resumes)");
  cmd->add_flag("--restart", o->restart, "Discard an interrupted run's partial output and start over");
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      AttackOptions base;
      base.set_eps(parse_number(o->eps, "--eps")).set_steps(o->steps);
      base.validate();
      o->sd.validate(-1, -1);
      if (o->batch < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", o->batch));
      const std::vector<std::string> models = split_list(o->models);
      if (models.empty()) throw Error("--models names no model");
      const torch::Device device = parse_device(common.device);
      // Everything the tables depend on: a resume must match it.
      nlohmann::json fp = {{"models", models},  {"data", o->data},   {"offset", o->offset},
                           {"count", o->count}, {"batch_size", o->batch}, {"attack_options", base.to_json()},
                           {"sdsgsm_options", o->sd.to_json()}, {"version", version_string()}};
      for (const auto& m : models) fp["model_md5"][m] = model_checksum(m);
      PartialFolder folder(o->out, fp, o->resume, o->restart);
      std::string md = fmt::format(
          "# SD-SGSM reproduction\n\nCommand: `sdsgsm reproduce --models {} --count {} --offset {} --eps {} --steps {}`"
          " ({}). SD-SGSM settings: {}.\n\n",
          o->models, o->count, o->offset, o->eps, o->steps, version_string(), o->sd.to_json().dump());
      nlohmann::json all;
      all["sdsgsm_options"] = o->sd.to_json();
      all["attack_options"] = base.to_json();
      all["ranks"] = dist::size();
      all["threads_per_rank"] = torch::get_num_threads();
      for (const auto& name : models) {
        auto model = load_classifier(name);
        model->to(device);
        auto data = open_image_source(o->data, Split::Test, o->offset, o->count);
        RunOptions ro;
        ro.batch_size = o->batch;
        ro.progress = !common.quiet;
        ro.first_index = o->offset;
        ro.device = device;
        nlohmann::json info = {{"model", model->name()}, {"model_kind", model->kind()}, {"data", data->source()},
                               {"split", "test"},          {"offset", o->offset},       {"count", data->size()},
                               {"batch_size", o->batch},   {"version", version_string()}};
        std::vector<nlohmann::json> rows;
        for (const auto& e : entries()) {
          AttackOptions ao = base;
          ao.early_stop = e.early_stop;
          ao.early_stop_8bit = e.early_stop_8bit;
          auto attack = make_attack(e.attack, ao, o->sd);
          RunOutput out;
          out.work = folder.work() / folder_name(name) / folder_name(e.label);
          out.info = info;
          out.fingerprint = info;
          out.fingerprint["model_md5"] = fp["model_md5"][name];
          out.fingerprint["attack_config"] = attack->config();
          AttackRunResult r = run_attack(*model, *data, *attack, ro, &out);
          if (!dist::is_root()) continue;
          auto s = r.report();
          s["label"] = e.label;
          s["config"] = r.config;
          rows.push_back(s);
        }
        if (!dist::is_root()) continue;
        md += fmt::format("## {} ({} images, clean accuracy {:.2f}%)\n\n{}\n### Ablation\n\n{}\n", model->name(),
                          data->size(), 100 * rows[0]["clean_accuracy"].get<double>(), paper_table(rows),
                          ablation_table(rows));
        all["models"][name] = rows;
      }
      if (dist::is_root()) {
        write_file_atomic(folder.work() / "results.md", md);
        write_file_atomic(folder.work() / "results.json", all.dump(2) + "\n");
        write_folder_report(folder.work());
      }
      folder.commit();
      if (dist::is_root()) fmt::print("{}wrote {}\n", md, o->out);
    };
  });
}

}  // namespace sdsgsm::cli
