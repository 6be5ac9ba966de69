#include <fmt/format.h>

#include "commands.hpp"
#include "sdsgsm/models.hpp"

namespace sdsgsm::cli {

void add_export_command(CLI::App& app, Common& common, Runner& run) {
  (void)common;
  auto* cmd = app.add_subcommand(
      "export",
      "Write a zoo model (a name, or a weights file written by 'sdsgsm train') as a TorchScript module:\n"
      "PyTorch loads it with torch.jit.load, and --model FILE takes it. Batch norm stays unfolded, as in\n"
      "a model exported from PyTorch.\n"
      "  sdsgsm export --model resnet20 --out resnet20-script.pt");
  struct Opts {
    std::string model = "resnet20", out;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--model", o->model, "Zoo name or sdsgsm weights file")->capture_default_str();
  cmd->add_option("--out", o->out, "TorchScript file to write")->required();
  cmd->callback([&run, o] {
    run = [o] {
      fs::path path = o->model;
      if (!fs::exists(path)) {
        path = find_zoo_weights(o->model);
        if (path.empty()) {
          throw Error(fmt::format("--model '{}' is neither a file nor a zoo name with shipped weights", o->model));
        }
      }
      LoadedNetwork loaded = load_network(path);
      loaded.net->eval();
      export_torchscript(*loaded.net, loaded.arch, o->out);
      fmt::print("wrote {} ({} as TorchScript, from {})\n", o->out, loaded.arch, path.string());
    };
  });
}

}  // namespace sdsgsm::cli
