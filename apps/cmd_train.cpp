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
    bool no_flip = false;
    bool no_nesterov = false;
    std::string adv_eps = "8/255";
    std::string adv_alpha;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--arch", o->t.arch, "Architecture (resnet20, resnet32, resnet44, resnet56, vgg7bn)")
      ->capture_default_str();
  cmd->add_option("--data", o->data, "CIFAR-10 binary folder or image folder")->capture_default_str();
  cmd->add_option("--out", o->out, "Where to write the trained weights (.pt)")->required();
  cmd->add_option("--checkpoint-dir", o->ckpt, "Checkpoint folder (default: <out>.ckpt)");
  cmd->add_flag("--resume", o->t.resume, "Continue from the last checkpoint (same options required)");
  cmd->add_option("--epochs", o->t.epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch-size", o->t.batch_size, "Mini-batch size")->capture_default_str();
  cmd->add_option("--lr", o->t.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--momentum", o->t.momentum, "SGD momentum")->capture_default_str();
  cmd->add_flag("--no-nesterov", o->no_nesterov, "Plain instead of Nesterov momentum");
  cmd->add_option("--weight-decay", o->t.weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--schedule", o->t.schedule, "cosine (linear warm-up, then cosine) or onecycle")
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", o->t.warmup_epochs, "Warm-up epochs of the cosine schedule")
      ->capture_default_str();
  cmd->add_option("--pad", o->t.pad, "Random-crop padding in pixels (0 disables cropping)")->capture_default_str();
  cmd->add_flag("--no-flip", o->no_flip, "Disable random horizontal flips");
  cmd->add_option("--precision", o->t.precision, "fp32, or bf16 mixed precision (about 1.8x faster on CPUs with AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->t.seed, "Seed for initialisation, order and augmentation")->capture_default_str();
  cmd->add_option("--train-count", o->train_count, "Use only the first N training images (default: all)");
  cmd->add_option("--test-count", o->test_count, "Evaluate on the first N test images (default: all; 0: none)");
  cmd->add_option("--eval-every", o->t.eval_every, "Test accuracy every N epochs (0: only at the end)")
      ->capture_default_str();
  cmd->add_option("--adversarial", o->t.adversarial,
                  "Adversarial training: none, fgsm-rs (Wong et al. 2020), n-fgsm (de Jorge et al. 2022),\n"
                  "pgd (Madry et al. 2018) or fgsm (no random start: overfits catastrophically)")
      ->capture_default_str();
  cmd->add_option("--adv-eps", o->adv_eps, "l_inf radius of the training adversarials (a number or a fraction)")
      ->capture_default_str();
  cmd->add_option("--adv-alpha", o->adv_alpha,
                  "Step size (default: fgsm-rs 1.25 x eps, n-fgsm and fgsm eps, pgd 2/255)");
  cmd->add_option("--adv-steps", o->t.adv_steps, "PGD steps of --adversarial pgd")->capture_default_str();
  cmd->add_option("--guard-count", o->t.guard_count,
                  "Training images held out (the last N) for the catastrophic-overfitting guard (0: no guard)")
      ->capture_default_str();
  cmd->add_option("--guard-drop", o->t.guard_drop,
                  "The guard stops when PGD accuracy falls below (1 - this) x its best and 10 points under it")
      ->capture_default_str();
  cmd->callback([&run, &common, o] {
    run = [&common, o] {
      TrainOptions t = o->t;
      t.out = o->out;
      t.checkpoint_dir = o->ckpt;
      t.flip = !o->no_flip;
      t.nesterov = !o->no_nesterov;
      t.progress = !common.quiet;
      t.adv_eps = parse_number(o->adv_eps, "--adv-eps");
      if (!o->adv_alpha.empty()) t.adv_alpha = parse_number(o->adv_alpha, "--adv-alpha");
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
