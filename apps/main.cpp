// sdsgsm: adversarial robustness analysis of image classifiers.
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <torch/torch.h>

#include "commands.hpp"
#include "sdsgsm/core.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "sdsgsm: adversarial robustness analysis of image classifiers (SD-SGSM and the classic "
      "gradient attacks) on LibTorch.\n\n"
      "Typical session:\n"
      "  sdsgsm data cifar10 --out data/cifar10          # obtain and verify CIFAR-10\n"
      "  sdsgsm eval --model resnet20 --data data/cifar10 # clean accuracy of the shipped model\n"
      "  sdsgsm train --arch resnet20 --data data/cifar10 --out models/resnet20.pt\n"
      "  sdsgsm attack --attack mifgsm --count 100 --out runs/mi   # attack, measure, save\n"
      "  sdsgsm compare --count 1000 --out runs/cmp                # several attacks, one table\n"
      "  sdsgsm models                                    # what --model accepts\n\n"
      "Every command takes --threads N (default: all cores) and --model NAME|PATH where a model is used.",
      "sdsgsm"};
  app.set_version_flag("--version", sdsgsm::version_string());
  app.require_subcommand(1);
  app.fallthrough();
  sdsgsm::cli::Common common;
  app.add_option("--threads", common.threads, "LibTorch intra-op threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", common.quiet, "Only warnings and errors on stderr; no progress bars");

  sdsgsm::cli::Runner run;
  sdsgsm::cli::add_data_command(app, common, run);
  sdsgsm::cli::add_train_command(app, common, run);
  sdsgsm::cli::add_eval_command(app, common, run);
  sdsgsm::cli::add_attack_command(app, common, run);
  sdsgsm::cli::add_saliency_command(app, common, run);
  sdsgsm::cli::add_reproduce_command(app, common, run);
  sdsgsm::cli::add_sweep_command(app, common, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto logger = spdlog::stderr_color_mt("sdsgsm");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  spdlog::set_level(common.quiet ? spdlog::level::warn : spdlog::level::info);
  try {
    int n = sdsgsm::configure_threads(common.threads);
    spdlog::debug("using {} threads", n);
    run();
  } catch (const sdsgsm::Error& e) {
    std::fprintf(stderr, "sdsgsm: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    auto nl = msg.find('\n');
    std::fprintf(stderr, "sdsgsm: error: %s\n", msg.substr(0, nl).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdsgsm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
