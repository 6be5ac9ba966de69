#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm::cli {
namespace {

struct Entry {
  std::string label, attack;
  std::optional<bool> early_stop;
};

/// The paper's comparison: the baselines as defined and early-stopped, and the SD-SGSM family
/// (whose ablation rows are I-FGSM with early stop, SD only, SGSM only, SD-SGSM).
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
  };
  return e;
}

std::string paper_table(const std::vector<nlohmann::json>& rows) {
  std::string out =
      "| attack | ASR | l2 | l_inf | SSIM | PSNR (dB) | ASR 8-bit | SSIM 8-bit | iters | DDI s | attack s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : rows) {
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    out += fmt::format("| {} | {:.1f}% | {:.3f} | {:.4f} | {:.4f} | {:.2f} | {:.1f}% | {:.4f} | {:.2f} | {:.1f} | {:.1f} |\n",
                       s["label"].get<std::string>(), 100 * f["asr"].get<double>(), f["l2_mean"].get<double>(),
                       f["linf_max"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                       100 * q["asr"].get<double>(), q["ssim_mean"].get<double>(), s["iterations_mean"].get<double>(),
                       s["ddi_seconds"].get<double>(), s["iteration_seconds"].get<double>());
  }
  return out;
}

std::string ablation_table(const std::vector<nlohmann::json>& rows) {
  std::string out = "| variant | allocation M | direction | ASR | l2 | SSIM |\n|---|---|---|---|---|---|\n";
  const std::vector<std::tuple<std::string, std::string, std::string>> order = {
      {"I-FGSM (early stop)", "uniform", "sign"},
      {"SD only (sd-ifgsm)", "DDI", "sign"},
      {"SGSM only (sgsm)", "uniform", "tanh"},
      {"SD-SGSM", "DDI", "tanh"}};
  for (const auto& [label, m, dir] : order) {
    for (const auto& s : rows) {
      if (s["label"] != label) continue;
      out += fmt::format("| {} | {} | {} | {:.1f}% | {:.3f} | {:.4f} |\n", label, m, dir,
                         100 * s["float"]["asr"].get<double>(), s["float"]["l2_mean"].get<double>(),
                         s["float"]["ssim_mean"].get<double>());
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
  cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      AttackOptions base;
      base.set_eps(parse_number(o->eps, "--eps")).set_steps(o->steps);
      base.validate();
      o->sd.validate(-1, -1);
      check_output_dir(o->out);
      std::vector<std::string> models;
      std::stringstream ss(o->models);
      for (std::string m; std::getline(ss, m, ',');) {
        if (!m.empty()) models.push_back(m);
      }
      if (models.empty()) throw Error("--models names no model");
      std::string report;
      write_output_dir(o->out, [&](const fs::path& tmp) {
        std::string md = fmt::format(
            "# SD-SGSM reproduction\n\nCommand: `sdsgsm reproduce --models {} --count {} --offset {} --eps {} --steps {}`"
            " ({}, {} threads). SD-SGSM settings: {}.\n\n",
            o->models, o->count, o->offset, o->eps, o->steps, version_string(), torch::get_num_threads(),
            o->sd.to_json().dump());
        nlohmann::json all;
        all["sdsgsm_options"] = o->sd.to_json();
        all["attack_options"] = base.to_json();
        for (const auto& name : models) {
          auto model = load_classifier(name);
          Dataset data = open_dataset(o->data, Split::Test, o->offset, o->count);
          RunOptions ro;
          ro.batch_size = o->batch;
          ro.progress = !common.quiet;
          ro.first_index = o->offset;
          std::vector<nlohmann::json> rows;
          auto clean = data.float_images(0, std::min<int64_t>(8, data.size()));
          for (const auto& e : entries()) {
            AttackOptions ao = base;
            ao.early_stop = e.early_stop;
            auto attack = make_attack(e.attack, ao, o->sd);
            AttackRunResult r = run_attack(*model, data, *attack, ro);
            std::string dir = e.label;
            for (char& c : dir) {
              if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
            }
            nlohmann::json info = {{"model", model->name()}, {"data", data.source}, {"offset", o->offset},
                                   {"count", data.size()}, {"version", version_string()}};
            write_attack_outputs(r, info, tmp / name / dir, clean);
            auto s = r.summary();
            s["label"] = e.label;
            s["config"] = r.config;
            rows.push_back(s);
          }
          md += fmt::format("## {} ({} images, clean accuracy {:.2f}%)\n\n{}\n### Ablation\n\n{}\n", model->name(),
                            data.size(), 100 * rows[0]["clean_accuracy"].get<double>(), paper_table(rows),
                            ablation_table(rows));
          all["models"][name] = rows;
        }
        write_file_atomic(tmp / "results.md", md);
        write_file_atomic(tmp / "results.json", all.dump(2) + "\n");
        report = md;
      });
      fmt::print("{}wrote {}\n", report, o->out);
    };
  });
}

}  // namespace sdsgsm::cli
