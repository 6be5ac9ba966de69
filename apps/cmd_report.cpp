#include <fmt/format.h>

#include "commands.hpp"
#include "sdsgsm/report.hpp"

namespace sdsgsm::cli {

void add_report_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "report",
      "One self-contained HTML page from run folders (those of attack, or the compare and reproduce\n"
      "folders holding them): summary tables with the evaluation warnings, ASR curves against the l2\n"
      "budget, the SSIM floor and eps, paired statistics, distributions of l2 and SSIM, captioned\n"
      "examples (with SD-SGSM's allocation map), per-class ASR and confusion matrices, configuration\n"
      "and timings. Images are inline: the file opens anywhere, without network. compare and\n"
      "reproduce write it as report.html by themselves.");
  struct Opts {
    std::vector<std::string> runs;
    std::string out;
    ReportOptions report;
    bool no_model = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("RUN_DIR", o->runs, "Run folders, or compare / reproduce output folders")->required();
  cmd->add_option("--out", o->out, "The HTML file to write")->required();
  cmd->add_option("--examples", o->report.examples, "Example images per attack (0: none)")->capture_default_str();
  cmd->add_flag("--no-model", o->no_model,
                "Do not load the model (no confidences in the captions, no allocation maps)");
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      (void)common;
      o->report.model = !o->no_model;
      std::vector<fs::path> inputs(o->runs.begin(), o->runs.end());
      write_report_html(o->out, inputs, o->report);
      fmt::print("wrote {}\n", o->out);
    };
  });
}

}  // namespace sdsgsm::cli
