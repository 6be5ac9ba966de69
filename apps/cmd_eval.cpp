#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/checks.hpp"
#include "sdsgsm/evaluation.hpp"

namespace sdsgsm::cli {

void add_eval_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand("eval", "Clean top-1 accuracy of a model, per class, with a confusion matrix");
  struct Opts {
    std::string model = "resnet20";
    std::string data = "data/cifar10";
    std::string json;
    std::string split = "test";
    int64_t count = -1, offset = 0, batch = 128;
    DataFlags data_flags;
  };
  auto o = std::make_shared<Opts>();
  add_model_data_flags(cmd, o->model, o->data, o->split, o->data_flags);
  cmd->add_option("--count", o->count, "Number of images (default: all)");
  cmd->add_option("--offset", o->offset, "Index of the first image")->capture_default_str();
  add_batch_flag(cmd, o->batch, "Images per forward pass");
  cmd->add_option("--json", o->json, "Also write the full result (per-class accuracy, confusion matrix) here");
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      const torch::Device device = parse_device(common.device);
      auto model = load_classifier(o->model);
      model->to(device);
      Dataset data = open_dataset(o->data, to_split(o->split), o->offset, o->count, data_options(o->data_flags, *model, device));
      const int64_t probe = std::min<int64_t>(data.size(), 16);
      auto warnings = check_model(*model, data.float_images(0, probe).to(device), data.labels.narrow(0, 0, probe).to(device),
                                  data.num_classes(), /*gradients=*/false);
      for (const auto& w : warnings) spdlog::warn("{}", w);
      EvalResult r = evaluate(*model, data, o->batch, !common.quiet, device);
      fmt::print("model {} ({}, {} parameters) on {} images of {}\n", model->name(), model->kind(),
                 model->parameter_count(), r.total, data.source);
      fmt::print("top-1 accuracy: {:.2f}% ({}/{})  [{:.1f}s, {:.0f} img/s, {} threads]\n", 100 * r.accuracy(),
                 r.correct, r.total, r.seconds, r.seconds > 0 ? r.total / r.seconds : 0.0, torch::get_num_threads());
      auto pc = r.per_class_accuracy();
      // Many classes (ImageNet's 1000): only those the images hold.
      const bool many = pc.size() > 20;
      if (many) fmt::print("  (per class: the {} classes with images)\n", r.confusion.sum(1).gt(0).sum().item<int64_t>());
      for (size_t c = 0; c < pc.size(); ++c) {
        if (many && r.confusion[static_cast<int64_t>(c)].sum().item<int64_t>() == 0) continue;
        fmt::print("  {:<12} {:6.2f}%\n", c < r.classes.size() ? r.classes[c] : std::to_string(c), 100 * pc[c]);
      }
      if (!o->json.empty()) {
        auto j = r.to_json();
        j["model"] = model->name();
        j["data"] = data.source;
        j["offset"] = o->offset;
        j["threads"] = torch::get_num_threads();
        j["version"] = version_string();
        j["warnings"] = warnings;
        record_data_flags(j, o->data_flags, {});
        write_file_atomic(o->json, j.dump(2) + "\n");
        fmt::print("wrote {}\n", o->json);
      }
    };
  });

  auto* models = app.add_subcommand("models", "List the model zoo and where each shipped weight file is");
  models->callback([&run] {
    run = [] {
      for (const auto& m : zoo_models()) {
        auto net = make_network(m.arch);
        fs::path w = find_zoo_weights(m.name);
        fmt::print("{:<12} {:<9} {:>8} parameters  {}\n", m.name, m.arch, count_parameters(*net),
                   w.empty() ? "(no shipped weights; " + m.training + ")" : w.string());
      }
    };
  });
  (void)common;
}

}  // namespace sdsgsm::cli
