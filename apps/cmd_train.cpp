#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/training.hpp"

namespace sdsgsm::cli {

void add_train_command(CLI::App& app, Common& common, Runner& run) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train a zoo network on a data set (random crop + flip, SGD with Nesterov momentum, cosine or\n"
      "one-cycle schedule). Writes a checkpoint every epoch to <out>.ckpt/ (continue with --resume),\n"
      "the weights to --out and a JSON log with the per-epoch history to <out>.json.\n"
      "--adversarial trains on l_inf adversarials (fgsm-rs, n-fgsm, pgd or fgsm) and guards against\n"
      "catastrophic overfitting: PGD accuracy on the last --guard-count training images (held out)\n"
      "every epoch; when it collapses the run rolls back to its best epoch and stops.");
  struct Opts {
    TrainOptions t;
    std::string data = "data/cifar10";
    std::string out;
    std::string ckpt;
    int64_t train_count = -1;
    int64_t test_count = -1;
    OptionFlags flags;  ///< TrainOptions' flags, from its declarations
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--data", o->data, "CIFAR-10 binary folder or image folder")->capture_default_str();
  cmd->add_option("--out", o->out, "Where to write the trained weights (.pt)")->required();
  cmd->add_option("--checkpoint-dir", o->ckpt, "Checkpoint folder (default: <out>.ckpt)");
  cmd->add_option("--train-count", o->train_count, "Use only the first N training images (default: all)");
  cmd->add_option("--test-count", o->test_count, "Evaluate on the first N test images (default: all; 0: none)");
  o->flags.bind(TrainOptions::option_set(), o->t, "");
  o->flags.add_to(cmd);
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      TrainOptions t = o->t;
      t.out = o->out;
      t.checkpoint_dir = o->ckpt;
      t.progress = !common.quiet;
      t.validate();
      Dataset train = open_dataset(o->data, Split::Train, 0, o->train_count);
      Dataset test;
      if (o->test_count != 0) test = open_dataset(o->data, Split::Test, 0, o->test_count);
      spdlog::info("training {} on {} images ({} threads), testing on {}", t.arch, train.size(),
                   torch::get_num_threads(), test.size());
      TrainResult r = train_network(t, train, test);
      fmt::print("trained {} for {} epochs ({:.0f} img/s): weights in '{}'", t.arch, t.epochs, r.images_per_second,
                 t.out.string());
      if (r.test_accuracy >= 0) fmt::print(", test accuracy {:.2f}% on {} images", 100 * r.test_accuracy, test.size());
      if (r.best_epoch > 0) fmt::print(", best PGD accuracy on the held-out images {:.2f}% (epoch {})",
                                       100 * r.best_robust_accuracy, r.best_epoch);
      if (r.stopped_epoch > 0) fmt::print("; stopped after epoch {} and rolled back to epoch {}", r.stopped_epoch, r.best_epoch);
      fmt::print("\n");
    };
  });
}

}  // namespace sdsgsm::cli
