// `sdsgsm transfer`: the transfer-ASR matrix of attacks between models.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/run_folder.hpp"
#include "sdsgsm/evaluation_tables.hpp"
#include "sdsgsm/transfer.hpp"

namespace sdsgsm::cli {

void add_transfer_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "transfer",
      "Transfer between models: each attack's adversarials, made on each model of --models, evaluated\n"
      "on every model of --models. A cell counts the images the attack fooled on the model it was\n"
      "made on that the other model classifies correctly when clean; its transfer ASR is the share\n"
      "that fools the other model too (float, and rounded to 8-bit pixels). The diagonal is the\n"
      "white-box ASR. Prints the matrices; with --out, writes transfer.json and transfer.md there.");
  struct Opts {
    std::string attacks = "ifgsm,mifgsm,nifgsm,sdsgsm", models = "resnet20,vgg7bn";
    std::string data = "data/cifar10", split = "test", eps = "8/255", out;
    int64_t count = 1000, offset = 0, batch = 128;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--attacks", o->attacks, "Attacks, comma-separated (each with its defaults and --eps)")->capture_default_str();
  cmd->add_option("--models", o->models, "Models (zoo names or files), comma-separated; at least one")->capture_default_str();
  cmd->add_option("--data", o->data, "CIFAR-10 binary folder, .bin file, image folder or CSV list")->capture_default_str();
  cmd->add_option("--split", o->split, "CIFAR-10 split: test or train")->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  add_count_flag(cmd, o->count, "Number of images");
  cmd->add_option("--offset", o->offset, "Index of the first image")->capture_default_str();
  add_batch_flag(cmd, o->batch);
  cmd->add_option("--eps", o->eps, "l_inf budget of the bounded attacks (fractions allowed)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of random starts")->capture_default_str();
  cmd->add_option("--out", o->out, "Output folder for transfer.json and transfer.md (written all or nothing)");
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      const std::vector<std::string> attacks = split_list(o->attacks), models = split_list(o->models);
      if (attacks.empty()) throw Error("--attacks needs at least one attack");
      if (models.empty()) throw Error("--models needs at least one model");
      const double eps = parse_number(o->eps, "--eps");
      std::vector<std::unique_ptr<Attack>> made;
      for (const auto& a : attacks) {
        made.push_back(make_attack(a, AttackOptions().set_eps(eps).set_seed(o->seed).set_steps(attack_info(a).default_steps)));
      }
      if (!o->out.empty()) check_output_dir(o->out);
      RunOptions ro;
      ro.batch_size = o->batch;
      ro.progress = !common.quiet;
      ro.first_index = o->offset;
      ro.keep_adversarial = true;
      ro.validate();
      ro.device = parse_device(common.device);
      std::vector<std::shared_ptr<Classifier>> loaded;
      for (const auto& m : models) {
        loaded.push_back(load_classifier(m));
        loaded.back()->to(ro.device);
      }
      Dataset data = open_dataset(o->data, to_split(o->split), o->offset, o->count);
      const torch::Tensor clean = data.images.to(torch::kFloat32).div(255);
      std::vector<TransferCell> cells;
      for (size_t a = 0; a < made.size(); ++a) {
        for (size_t s = 0; s < loaded.size(); ++s) {
          AttackRunResult r = run_attack(*loaded[s], data, *made[a], ro);
          for (size_t t = 0; t < loaded.size(); ++t) {
            cells.push_back(transfer_cell(r, clean, *loaded[t], models[s], models[t], o->batch, ro.device));
          }
        }
      }
      const std::string tables = transfer_tables(cells);
      fmt::print("Transfer on {} images ({} {}, offset {}), eps {}\n{}", data.size(), o->data, o->split, o->offset, o->eps, tables);
      if (!o->out.empty()) {
        nlohmann::json j = {{"models", models}, {"attacks", attacks}, {"data", data.source}, {"split", o->split},
                            {"offset", o->offset}, {"count", data.size()}, {"eps", eps}, {"seed", o->seed},
                            {"version", version_string()}};
        for (const auto& c : cells) j["cells"].push_back(c.to_json());
        write_output_dir(o->out, [&](const fs::path& tmp) {
          write_file_atomic(tmp / "transfer.json", j.dump(2) + "\n");
          write_file_atomic(tmp / "transfer.md", fmt::format("Transfer on {} images, eps {}\n{}", data.size(), o->eps, tables));
        });
        fmt::print("wrote {}\n", o->out);
      }
    };
  });
}

}  // namespace sdsgsm::cli
