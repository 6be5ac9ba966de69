// TrainOptions' declarations (include/sdsgsm/options.hpp): each field of `sdsgsm train` once, with
// its flag, JSON key, check and help. The command's flags (apps/cmd_train.cpp), the checks of
// validate() and the fingerprint a resume must match (to_json) all read this set.
#include <fmt/format.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/training.hpp"

namespace sdsgsm {

const OptionSet<TrainOptions>& TrainOptions::option_set() {
  using O = TrainOptions;
  auto never = [](const O&) { return false; };
  // The adversarial options define the result only when adversarial training is on: standard runs
  // keep the fingerprint (resume) and log they had before adversarial training existed.
  auto adversarial = [](const O& o) { return o.adversarial != "none"; };
  static const OptionSet<O> set(
      "train",
      {
          option("arch", &O::arch, "Architecture (resnet20, resnet32, resnet44, resnet56, vgg7bn)"),
          option("resume", &O::resume, "Continue from the last checkpoint (same options required)").when(never),
          option("epochs", &O::epochs, "Epochs").at_least(1),
          option("batch-size", &O::batch_size, "Mini-batch size").at_least(1),
          option("lr", &O::lr, "Peak learning rate").positive(),
          option("momentum", &O::momentum, "SGD momentum").in_range(0, 1, RangeEnds::RightOpen),
          option("nesterov", &O::nesterov, "Plain instead of Nesterov momentum")
              .off_switch()
              .checked([](const O& o) -> std::string {
                return o.nesterov && o.momentum == 0 ? "--nesterov needs --momentum > 0" : "";
              }),
          option("weight-decay", &O::weight_decay, "L2 weight decay").at_least(0),
          option("schedule", &O::schedule, "cosine (linear warm-up, then cosine) or onecycle").one_of({"cosine", "onecycle"}),
          option("warmup-epochs", &O::warmup_epochs, "Warm-up epochs of the cosine schedule")
              .checked([](const O& o) -> std::string {
                return !(o.warmup_epochs >= 0 && o.warmup_epochs <= static_cast<double>(o.epochs))
                           ? fmt::format("--warmup-epochs must be in [0, epochs] (got {})", o.warmup_epochs)
                           : "";
              }),
          option("pad", &O::pad, "Random-crop padding in pixels (0 disables cropping)").at_least(0),
          option("flip", &O::flip, "Disable random horizontal flips").off_switch(),
          option("precision", &O::precision,
                 "fp32, or bf16 mixed precision (about 1.8x faster on CPUs with AVX512-BF16)")
              .one_of({"fp32", "bf16"}),
          option("seed", &O::seed, "Seed for initialisation, order and augmentation"),
          option("eval-every", &O::eval_every, "Test accuracy every N epochs (0: only at the end)").when(never),
          option("adversarial", &O::adversarial,
                 "Adversarial training: none, fgsm-rs (Wong et al. 2020), n-fgsm (de Jorge et al. 2022),\n"
                 "pgd (Madry et al. 2018) or fgsm (no random start: overfits catastrophically)")
              .one_of({"none", "fgsm-rs", "n-fgsm", kPgd, kFgsm})
              .when(adversarial),
          option("adv-eps", &O::adv_eps, "l_inf radius of the training adversarials (a number or a fraction)")
              .shown("8/255")
              .in_range(0, 1, RangeEnds::LeftOpen)
              .when(adversarial),
          // Written as the step the method takes (its default when unset).
          [adversarial] {
            auto f = option("adv-alpha", &O::adv_alpha,
                            "Step size (default: fgsm-rs 1.25 x eps, n-fgsm and fgsm eps, pgd 2/255)")
                         .in_range(0, 1, RangeEnds::LeftOpen)
                         .when(adversarial);
            f.get = [](const O& o) -> nlohmann::json { return o.adversarial_alpha(); };
            return f;
          }(),
          option("adv-steps", &O::adv_steps, "PGD steps of --adversarial pgd")
              .at_least(1)
              .when([](const O& o) { return o.adversarial == kPgd; }),
          option("guard-count", &O::guard_count,
                 "Training images held out (the last N) for the catastrophic-overfitting guard (0: no guard)")
              .at_least(0)
              .when(adversarial),
          option("guard-drop", &O::guard_drop,
                 "The guard stops when PGD accuracy falls below (1 - this) x its best and 10 points under it")
              .in_range(0, 1, RangeEnds::Open)
              .when(adversarial),
      });
  return set;
}

void TrainOptions::validate() const {
  option_set().validate(*this);
  if (out.empty()) throw Error("--out is required: where to write the trained weights");
  make_network(arch);  // throws for an unknown architecture
}

double TrainOptions::adversarial_alpha() const {
  if (adv_alpha) return *adv_alpha;
  if (adversarial == "fgsm-rs") return 1.25 * adv_eps;
  if (adversarial == kPgd) return 2.0 / 255;
  return adv_eps;  // n-fgsm, fgsm
}

nlohmann::json TrainOptions::to_json() const { return option_set().to_json(*this); }

}  // namespace sdsgsm
