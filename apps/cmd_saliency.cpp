#include <chrono>

#include <fmt/format.h>

#include "commands.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm::cli {

void add_saliency_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "saliency",
      "SD-SGSM's decision-dependent domain for N images. Writes to --out: saliency.png (image |\n"
      "sensitivity | overlay | domain, one row per image), maps.pt (the normalised sensitivity S~,\n"
      "N x 1 x H x W float), domain.pt (N x 1 x H x W bool) and saliency.json (settings, DDI time).\n"
      "Its default grid (k 4, s 2, rho 0.25) is finer than the attack's (k 16, s 16, rho 0.05); pass\n"
      "--window 0 --stride 0 --rho 0.05 (half-image windows) to see the domain the attack uses by default.");
  struct Opts {
    std::string model = "resnet20", data = "data/cifar10", split = "test", out;
    int64_t count = 16, offset = 0;
    SdsgsmOptions sd;
    DataFlags data_flags;
  };
  auto o = std::make_shared<Opts>();
  // A finer grid than the attack's default (16 x 16 windows, 4 on a CIFAR image: the map is then
  // constant on each quadrant), so that the picture shows where the decision depends on.
  o->sd.ddi.set_window(4).set_stride(2);
  o->sd.set_rho(0.25);
  add_model_data_flags(cmd, o->model, o->data, o->split, o->data_flags);
  add_count_flag(cmd, o->count, "Number of images");
  cmd->add_option("--offset", o->offset, "Index of the first image")->capture_default_str();
  add_sdsgsm_flags(cmd, o->sd, kDdiFlags | kDomainFlags, "");
  cmd->add_option("--out", o->out, "Output folder")->required();
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      (void)common;
      check_output_dir(o->out);
      auto model = load_classifier(o->model);
      Dataset data = open_dataset(o->data, to_split(o->split), o->offset, o->count, data_options(o->data_flags, *model, torch::kCPU));
      auto x = data.float_images(0, data.size());
      o->sd.validate(x.size(2), x.size(3));
      auto t0 = std::chrono::steady_clock::now();
      auto s = sensitivity_map(*model, x, data.labels, o->sd.ddi);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto flat = flat_maps(s);
      auto s_norm = normalize_sensitivity(s);
      auto domain = domain_mask(s_norm, o->sd.rho, flat);
      write_output_dir(o->out, [&](const fs::path& tmp) {
        write_saliency_png(x, s_norm, domain, tmp / "saliency.png");
        auto save = [&](const torch::Tensor& t, const char* name) {
          auto bytes = torch::pickle_save(t.contiguous());
          write_file_atomic(tmp / name, std::string_view(bytes.data(), bytes.size()));
        };
        save(s_norm, "maps.pt");
        save(domain, "domain.pt");
        nlohmann::json j = {{"model", model->name()},
                            {"data", data.source},
                            {"offset", o->offset},
                            {"count", data.size()},
                            {"ddi", o->sd.ddi.to_json()},
                            {"rho", o->sd.rho},
                            {"windows", ddi_windows(x.size(2), x.size(3), o->sd.ddi).size(0)},
                            {"flat_maps", flat.sum().item<int64_t>()},
                            {"ddi_seconds", seconds},
                            {"version", version_string()}};
        write_file_atomic(tmp / "saliency.json", j.dump(2) + "\n");
      });
      fmt::print("DDI maps of {} images ({} windows each, {:.2f}s, {} flat): wrote {}\n", data.size(),
                 ddi_windows(x.size(2), x.size(3), o->sd.ddi).size(0), seconds, flat.sum().item<int64_t>(), o->out);
    };
  });
}

}  // namespace sdsgsm::cli
