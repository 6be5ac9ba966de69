// sdsgsm: adversarial robustness analysis of image classifiers.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <torch/torch.h>

#include "commands.hpp"
#include "sdsgsm/core.hpp"
#include "sdsgsm/distributed.hpp"

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
      "  sdsgsm robust --model resnet20 --eps 8/255 --out runs/rob # robust accuracy (APGD, Square)\n"
      "  sdsgsm models                                    # what --model accepts\n\n"
      "Every command takes --threads N (default: all cores) and --model NAME|PATH where a model is used.",
      "sdsgsm"};
  app.set_version_flag("--version", sdsgsm::version_string());
  app.require_subcommand(1);
  app.fallthrough();
  sdsgsm::cli::Common common;
  app.add_option("--threads", common.threads,
                 "LibTorch intra-op threads (default: all cores; under mpirun, the cores divided among the "
                 "ranks on each machine)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--device", common.device, "cpu, cuda or cuda:N (CUDA needs a CUDA LibTorch build)")
      ->capture_default_str();
  app.add_flag("-q,--quiet", common.quiet, "Only warnings and errors on stderr; no progress bars");

  sdsgsm::cli::Runner run;
  sdsgsm::cli::add_data_command(app, common, run);
  sdsgsm::cli::add_train_command(app, common, run);
  sdsgsm::cli::add_eval_command(app, common, run);
  sdsgsm::cli::add_attack_command(app, common, run);
  sdsgsm::cli::add_saliency_command(app, common, run);
  sdsgsm::cli::add_reproduce_command(app, common, run);
  sdsgsm::cli::add_sweep_command(app, common, run);
  sdsgsm::cli::add_export_command(app, common, run);
  sdsgsm::cli::add_tune_command(app, common, run);
  sdsgsm::cli::add_report_command(app, common, run);
  sdsgsm::cli::add_robust_command(app, common, run);
  sdsgsm::cli::add_transfer_command(app, common, run);

  // A file-size limit (ulimit -f) or a full disk ends a write with an error we report in one line,
  // leaving the run resumable, instead of killing the process mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  sdsgsm::dist::init(&argc, &argv);
  const bool root = sdsgsm::dist::is_root();
  std::vector<std::string> args(argv, argv + argc);
  try {
    sdsgsm::cli::expand_config(app, "attack", args);  // attack --config FILE: a run's options
  } catch (const sdsgsm::Error& e) {
    if (root) fmt::print(stderr, "sdsgsm: error: {}\n", e.what());
    sdsgsm::dist::finalize();
    return 2;
  }
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 takes them last first, without argv[0]
    app.parse(reversed);
  } catch (const sdsgsm::Error& e) {
    // A flag's value the option's declaration refuses (e.g. --levels 2.5): its one line.
    if (root) fmt::print(stderr, "sdsgsm: error: {}\n", e.what());
    sdsgsm::dist::finalize();
    return 2;
  } catch (const CLI::ParseError& e) {
    int rc = e.get_exit_code() == 0 ? 0 : 2;
    if (rc == 0) {
      if (root) app.exit(e);  // --help, --version
    } else if (root) {
      // One line in the tool's error format, naming the culprit.
      std::string message = e.what();
      std::string known;
      auto is_command = [&](const std::string& name) {
        for (const auto* sub : app.get_subcommands({})) {
          if (!sub->get_name().empty() && sub->get_name() == name) return true;
        }
        return false;
      };
      for (const auto* sub : app.get_subcommands({})) {
        if (!sub->get_name().empty()) known += (known.empty() ? "" : ", ") + sub->get_name();
      }
      for (size_t i = 1; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.empty() || arg[0] == '-') {
          if (arg == "--threads" || arg == "--device") ++i;  // their values
          continue;
        }
        if (!is_command(arg)) {
          message = fmt::format("unknown command '{}' (commands: {})", arg, known);
        }
        break;
      }
      if (message.find('\n') != std::string::npos) message = message.substr(0, message.find('\n'));
      fmt::print(stderr, "sdsgsm: error: {} (see 'sdsgsm --help')\n", message);
    }
    sdsgsm::dist::finalize();
    return rc;
  }
  auto logger = spdlog::stderr_color_mt("sdsgsm");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(sdsgsm::dist::size() > 1 ? fmt::format("[%H:%M:%S] [rank {}] %^%l%$ %v", sdsgsm::dist::rank())
                                              : std::string("[%H:%M:%S] %^%l%$ %v"));
  // Other ranks only warn: rank 0 reports.
  spdlog::set_level(common.quiet || !root ? spdlog::level::warn : spdlog::level::info);
  if (!root) common.quiet = true;
  auto fail = [](std::string message) {
    // One line, whatever a library put into the message.
    for (char& c : message) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    sdsgsm::dist::abort_all(message);  // returns only in a single process
    sdsgsm::dist::finalize();
    return 1;
  };
  try {
    const std::string cmd = app.get_subcommands().front()->get_name();
    if (common.device != "cpu" && cmd != "attack" && cmd != "compare" && cmd != "reproduce" && cmd != "eval") {
      throw sdsgsm::Error(fmt::format("--device {}: '{}' runs on the CPU; --device applies to attack, compare, "
                                      "reproduce and eval",
                                      common.device, cmd));
    }
    if (sdsgsm::dist::size() > 1) {
      if (cmd != "attack" && cmd != "compare" && cmd != "reproduce") {
        throw sdsgsm::Error(fmt::format("'{}' runs in one process; under mpirun only attack, compare and reproduce "
                                        "split their work across ranks",
                                        cmd));
      }
    }
    int n = sdsgsm::configure_threads(common.threads);
    spdlog::debug("using {} threads", n);
    run();
  } catch (const sdsgsm::Error& e) {
    return fail(e.what());
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    return fail(msg.substr(0, msg.find('\n')));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  sdsgsm::dist::finalize();
  return 0;
}
