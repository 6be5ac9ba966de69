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
    TransferOptions t;
    OptionFlags flags;  ///< TransferOptions' flags, from its declarations
  };
  auto o = std::make_shared<Opts>();
  o->flags.bind(TransferOptions::option_set(), o->t, "");
  o->flags.add_to(cmd);
  cmd->callback([&run, &common, o, cmd] {
    // --count given: exactly that many images (an error when the data holds fewer); not given: at
    // most the default, a smaller source taken whole.
    const bool count_given = cmd->count("--count") > 0;
    run = [&common, o, count_given] {
      TransferOptions t = o->t;
      t.validate();
      if (!count_given) t.count = up_to(t.count);
      const std::vector<std::string>& attacks = t.attacks;
      const std::vector<std::string>& models = t.models;
      const double eps = parse_number(t.eps, "--eps");
      std::vector<std::unique_ptr<Attack>> made;
      for (const auto& a : attacks) {
        made.push_back(make_attack(a, AttackOptions().set_eps(eps).set_seed(t.seed).set_steps(attack_info(a).default_steps)));
      }
      if (!t.out.empty()) check_output_dir(t.out);
      RunOptions ro;
      ro.batch_size = t.batch_size;
      ro.progress = !common.quiet;
      ro.first_index = t.offset;
      ro.keep_adversarial = true;
      ro.validate();
      ro.device = parse_device(common.device);
      std::vector<std::shared_ptr<Classifier>> loaded;
      for (const auto& m : models) {
        loaded.push_back(load_classifier(m));
        loaded.back()->to(ro.device);
      }
      Dataset data = open_dataset(t.data, to_split(t.split), t.offset, t.count);
      const torch::Tensor clean = data.images.to(torch::kFloat32).div(255);
      std::vector<TransferCell> cells;
      for (size_t a = 0; a < made.size(); ++a) {
        for (size_t s = 0; s < loaded.size(); ++s) {
          AttackRunResult r = run_attack(*loaded[s], data, *made[a], ro);
          for (size_t k = 0; k < loaded.size(); ++k) {
            cells.push_back(transfer_cell(r, clean, *loaded[k], models[s], models[k], t.batch_size, ro.device));
          }
        }
      }
      const std::string tables = transfer_tables(cells);
      fmt::print("Transfer on {} images ({} {}, offset {}), eps {}\n{}", data.size(), t.data, t.split, t.offset, t.eps, tables);
      if (!t.out.empty()) {
        nlohmann::json j = {{"models", models}, {"attacks", attacks}, {"data", data.source}, {"split", t.split},
                            {"offset", t.offset}, {"count", data.size()}, {"eps", eps}, {"seed", t.seed},
                            {"version", version_string()}};
        for (const auto& c : cells) j["cells"].push_back(c.to_json());
        write_output_dir(t.out, [&](const fs::path& tmp) {
          write_file_atomic(tmp / "transfer.json", j.dump(2) + "\n");
          write_file_atomic(tmp / "transfer.md", fmt::format("Transfer on {} images, eps {}\n{}", data.size(), t.eps, tables));
        });
        fmt::print("wrote {}\n", t.out);
      }
    };
  });
}

}  // namespace sdsgsm::cli
