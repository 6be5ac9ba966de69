// Training zoo networks (see training.hpp), optionally adversarially, in l_inf:
//  - fgsm-rs: Wong, Rice & Kolter, "Fast is better than free: revisiting adversarial training",
//    ICLR 2020: delta ~ U(-eps, eps), one signed-gradient step of alpha = 1.25 eps, projected to
//    the eps ball and [0,1];
//  - n-fgsm: de Jorge et al., "Make some noise: reliable and efficient single-step adversarial
//    training", NeurIPS 2022: delta ~ U(-2 eps, 2 eps), one step of alpha = eps, projected to
//    [0,1] only (the result may lie up to 3 eps from the image);
//  - pgd: Madry et al., "Towards deep learning models resistant to adversarial attacks", ICLR
//    2018: uniform random start in the eps ball, adv_steps steps of alpha (2/255), projected;
//  - fgsm: Goodfellow et al. 2015, no random start, alpha = eps: the method known to overfit
//    catastrophically (Wong et al. 2020), kept to exercise the guard.
// The loss is the cross-entropy on the adversarial batch alone (plain adversarial training).
// The guard against catastrophic overfitting measures PGD accuracy (10 steps of 2/255 at adv_eps,
// random start from a fixed seed) on the last guard_count training images, held out, after every
// epoch; when it collapses (guard_collapsed) the run rolls back to the best epoch and stops.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include "sdsgsm/attacks.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/training.hpp"

namespace sdsgsm {
namespace {

constexpr double kPi = 3.14159265358979323846;

/// Random crop from the zero-padded images and random horizontal flip, reproducible from `gen`.
torch::Tensor augment(const torch::Tensor& padded_u8, const torch::Tensor& index, int64_t pad, bool flip,
                      at::Generator& gen, int64_t h, int64_t w) {
  const int64_t n = index.size(0);
  auto out = torch::empty({n, padded_u8.size(1), h, w}, torch::kUInt8);
  auto offsets = torch::randint(0, 2 * pad + 1, {n, 2}, gen, torch::kInt64);
  auto flips = torch::randint(0, 2, {n}, gen, torch::kInt64);
  auto* idx = index.data_ptr<int64_t>();
  auto* off = offsets.data_ptr<int64_t>();
  auto* fl = flips.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    auto crop = padded_u8[idx[i]].narrow(1, off[2 * i], h).narrow(2, off[2 * i + 1], w);
    if (flip && fl[i]) crop = crop.flip({2});
    out[i].copy_(crop);
  }
  return out.to(torch::kFloat32).div_(255.0f);
}

void save_optimizer(torch::optim::SGD& opt, const fs::path& path) {
  write_via_temp(path, [&](const fs::path& tmp) { torch::save(opt, tmp.string()); });
}

/// Logits of `x`; with bf16, convolutions and linear layers in bfloat16, the logits in float32.
torch::Tensor forward_logits(Network& net, const torch::Tensor& x, bool bf16) {
  if (!bf16) return net.forward(x);
  at::autocast::set_cpu_enabled(true);
  auto logits = net.forward(x).to(torch::kFloat32);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  return logits;
}

/// Parameters and buffers by name, deep-copied (the best epoch's weights, kept in memory).
using Weights = std::vector<std::pair<std::string, torch::Tensor>>;

Weights snapshot(Network& net) {
  torch::NoGradGuard ng;
  Weights w;
  for (auto& p : net.named_parameters(true)) w.emplace_back(p.key(), p.value().detach().clone());
  for (auto& b : net.named_buffers(true)) w.emplace_back(b.key(), b.value().detach().clone());
  return w;
}

void restore(Network& net, const Weights& w) {
  torch::NoGradGuard ng;
  auto p = net.named_parameters(true);
  auto b = net.named_buffers(true);
  for (const auto& [name, value] : w) {
    if (auto* t = p.find(name)) t->copy_(value);
    else b[name].copy_(value);
  }
}

/// The guard's measurement: accuracy under PGD (10 steps of 2/255 at options.adv_eps, uniform
/// random start) on `held`, in evaluation mode, with the same random start every epoch.
double guard_accuracy(Network& net, const Dataset& held, const TrainOptions& o) {
  TrainOptions pgd = o;
  pgd.set_adversarial(kPgd).set_adv_steps(10).set_adv_alpha(2.0 / 255).set_precision("fp32");
  at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003ULL + 0x9E3779B97F4A7C15ULL);
  net.eval();
  int64_t correct = 0;
  for (int64_t start = 0; start < held.size(); start += 250) {
    const int64_t b = std::min<int64_t>(250, held.size() - start);
    auto x = held.float_images(start, b);
    auto y = held.batch_labels(start, b);
    auto adv = adversarial_batch(net, x, y, pgd, gen);
    torch::NoGradGuard ng;
    correct += net.forward(adv).argmax(1).eq(y).sum().item<int64_t>();
  }
  net.train();
  return static_cast<double>(correct) / held.size();
}

nlohmann::json record_json(const EpochRecord& r, bool guard) {
  nlohmann::json j = {{"epoch", r.epoch}, {"lr", r.lr}, {"train_loss", r.train_loss},
                      {"train_accuracy", r.train_accuracy}, {"test_accuracy", r.test_accuracy},
                      {"seconds", r.seconds}};
  if (guard) j["robust_accuracy"] = r.robust_accuracy;
  j["wall_seconds"] = r.wall_seconds;
  return j;
}

const std::vector<std::string> kAdversarialMethods = {"none", "fgsm-rs", "n-fgsm", kPgd, kFgsm};

}  // namespace

void TrainOptions::validate() const {
  if (epochs < 1) throw Error(fmt::format("--epochs must be >= 1 (got {})", epochs));
  if (batch_size < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", batch_size));
  if (!(lr > 0)) throw Error(fmt::format("--lr must be > 0 (got {})", lr));
  if (momentum < 0 || momentum >= 1) throw Error(fmt::format("--momentum must be in [0,1) (got {})", momentum));
  if (weight_decay < 0) throw Error(fmt::format("--weight-decay must be >= 0 (got {})", weight_decay));
  if (schedule != "cosine" && schedule != "onecycle") {
    throw Error(fmt::format("--schedule must be cosine or onecycle (got '{}')", schedule));
  }
  if (warmup_epochs < 0 || warmup_epochs > static_cast<double>(epochs)) {
    throw Error(fmt::format("--warmup-epochs must be in [0, epochs] (got {})", warmup_epochs));
  }
  if (pad < 0) throw Error(fmt::format("--pad must be >= 0 (got {})", pad));
  if (out.empty()) throw Error("--out is required: where to write the trained weights");
  if (precision != "fp32" && precision != "bf16") {
    throw Error(fmt::format("--precision must be fp32 or bf16 (got '{}')", precision));
  }
  if (nesterov && momentum == 0) throw Error("--nesterov needs --momentum > 0");
  if (std::find(kAdversarialMethods.begin(), kAdversarialMethods.end(), adversarial) == kAdversarialMethods.end()) {
    throw Error(fmt::format("--adversarial must be none, fgsm-rs, n-fgsm, pgd or fgsm (got '{}')", adversarial));
  }
  if (!(adv_eps > 0 && adv_eps <= 1)) throw Error(fmt::format("--adv-eps must be in (0, 1] (got {})", adv_eps));
  if (adv_alpha && !(*adv_alpha > 0 && *adv_alpha <= 1)) {
    throw Error(fmt::format("--adv-alpha must be in (0, 1] (got {})", *adv_alpha));
  }
  if (adv_steps < 1) throw Error(fmt::format("--adv-steps must be >= 1 (got {})", adv_steps));
  if (guard_count < 0) throw Error(fmt::format("--guard-count must be >= 0 (got {})", guard_count));
  if (!(guard_drop > 0 && guard_drop < 1)) throw Error(fmt::format("--guard-drop must be in (0, 1) (got {})", guard_drop));
  make_network(arch);  // throws for an unknown architecture
}

double TrainOptions::adversarial_alpha() const {
  if (adv_alpha) return *adv_alpha;
  if (adversarial == "fgsm-rs") return 1.25 * adv_eps;
  if (adversarial == kPgd) return 2.0 / 255;
  return adv_eps;  // n-fgsm, fgsm
}

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j = {{"arch", arch},       {"epochs", epochs},     {"batch_size", batch_size},
                      {"lr", lr},          {"momentum", momentum}, {"weight_decay", weight_decay},
                      {"nesterov", nesterov}, {"schedule", schedule}, {"warmup_epochs", warmup_epochs},
                      {"pad", pad},        {"flip", flip},         {"seed", seed}, {"precision", precision}};
  // Adversarial options only when adversarial training is on: standard runs keep their
  // fingerprint (resume) and log as before.
  if (adversarial != "none") {
    j["adversarial"] = adversarial;
    j["adv_eps"] = adv_eps;
    j["adv_alpha"] = adversarial_alpha();
    if (adversarial == kPgd) j["adv_steps"] = adv_steps;
    j["guard_count"] = guard_count;
    j["guard_drop"] = guard_drop;
  }
  return j;
}

bool guard_collapsed(double best, double current, double drop) {
  return current < (1 - drop) * best && best - current > 0.10;
}

torch::Tensor adversarial_batch(Network& net, const torch::Tensor& x, const torch::Tensor& y,
                                const TrainOptions& o, at::Generator& gen) {
  const std::string& m = o.adversarial;
  const double eps = o.adv_eps, alpha = o.adversarial_alpha();
  const bool bf16 = o.precision == "bf16";
  // Random start: U(-eps, eps) (fgsm-rs, pgd), U(-2 eps, 2 eps) (n-fgsm), none (fgsm); then [0,1].
  torch::Tensor adv = x;
  if (m != kFgsm) {
    const double radius = m == "n-fgsm" ? 2 * eps : eps;
    adv = (x + (torch::rand(x.sizes(), gen, x.options()) * 2 - 1) * radius).clamp(0, 1);
  }
  const int64_t steps = m == kPgd ? o.adv_steps : 1;
  for (int64_t s = 0; s < steps; ++s) {
    auto xa = adv.detach().requires_grad_(true);
    auto loss = torch::nn::functional::cross_entropy(forward_logits(net, xa, bf16), y);
    // The gradient with respect to the input only: the parameters' gradients stay untouched.
    auto g = torch::autograd::grad({loss}, {xa})[0];
    adv = xa.detach() + alpha * g.sign();
    if (m != "n-fgsm") adv = torch::min(torch::max(adv, x - eps), x + eps);
    adv = adv.clamp(0, 1);
  }
  return adv.detach();
}

double scheduled_lr(const TrainOptions& o, double epoch) {
  const double total = static_cast<double>(o.epochs);
  if (o.schedule == "onecycle") {
    // Linear ramp from lr/25 to lr over the first 30%, then cosine annealing to lr/1e4.
    const double up = 0.3 * total;
    if (epoch < up) return o.lr / 25 + (o.lr - o.lr / 25) * epoch / up;
    double t = (epoch - up) / (total - up);
    return o.lr / 1e4 + (o.lr - o.lr / 1e4) * 0.5 * (1 + std::cos(kPi * t));
  }
  if (epoch < o.warmup_epochs) return o.lr * (epoch + 1e-3) / o.warmup_epochs;
  double span = total - o.warmup_epochs;
  double t = span > 0 ? (epoch - o.warmup_epochs) / span : 1.0;
  return o.lr * 0.5 * (1 + std::cos(kPi * std::min(t, 1.0)));
}

TrainResult train_network(const TrainOptions& o, const Dataset& train_set, const Dataset& test_set) {
  o.validate();
  if (train_set.size() == 0) throw Error("the training set is empty");
  const bool adversarial = o.adversarial != "none";
  const int64_t guard_n = adversarial ? o.guard_count : 0;
  const bool guard = guard_n > 0;
  if (guard && guard_n >= train_set.size()) {
    throw Error(fmt::format("--guard-count ({}) must be below the number of training images ({})", guard_n,
                            train_set.size()));
  }
  // The guard's images: the last guard_n of the training set, not trained on.
  const Dataset fit = guard ? train_set.slice(0, train_set.size() - guard_n) : train_set;
  const Dataset held = guard ? train_set.slice(train_set.size() - guard_n, guard_n) : Dataset{};
  const int64_t k = train_set.num_classes();
  fs::path ckpt = o.checkpoint_dir.empty() ? fs::path(o.out.string() + ".ckpt") : o.checkpoint_dir;
  if (o.out.has_parent_path()) fs::create_directories(o.out.parent_path());
  fs::create_directories(ckpt);

  torch::manual_seed(o.seed);
  auto net = make_network(o.arch, k);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(o.lr)
                                               .momentum(o.momentum)
                                               .weight_decay(o.weight_decay)
                                               .nesterov(o.nesterov));
  nlohmann::json config = o.to_json();
  config["train_images"] = train_set.size();
  TrainResult result;
  Weights best_weights;  // the guard's best epoch
  bool stopped = false;
  int64_t start_epoch = 0;
  const fs::path state_file = ckpt / "state.json";
  if (o.resume && fs::exists(state_file)) {
    nlohmann::json state = nlohmann::json::parse(read_file(state_file));
    if (state["config"] != config) {
      throw Error(fmt::format("cannot resume from '{}': it was made with other options ({})", ckpt.string(),
                              state["config"].dump()));
    }
    start_epoch = state["epochs_done"].get<int64_t>();
    LoadedNetwork loaded = load_network(ckpt / fmt::format("model-{}.pt", start_epoch));
    restore(*net, snapshot(*loaded.net));
    torch::load(opt, (ckpt / fmt::format("optim-{}.pt", start_epoch)).string());
    for (const auto& h : state["history"]) {
      EpochRecord r;
      r.epoch = h["epoch"]; r.lr = h["lr"]; r.train_loss = h["train_loss"];
      r.train_accuracy = h["train_accuracy"]; r.test_accuracy = h["test_accuracy"]; r.seconds = h["seconds"];
      r.robust_accuracy = h.value("robust_accuracy", -1.0);
      r.wall_seconds = h.value("wall_seconds", r.seconds);
      result.history.push_back(r);
    }
    if (state.contains("best_epoch")) {
      result.best_epoch = state["best_epoch"];
      result.best_robust_accuracy = state["best_robust_accuracy"];
      best_weights = snapshot(*load_network(ckpt / fmt::format("best-{}.pt", result.best_epoch)).net);
    }
    if (state.contains("stopped_early")) {
      stopped = true;
      result.stopped_epoch = state["stopped_early"]["epoch"];
      result.stop_reason = state["stopped_early"]["reason"];
      restore(*net, best_weights);
    }
    spdlog::info("resuming from '{}' after epoch {}", ckpt.string(), start_epoch);
  } else if (o.resume) {
    spdlog::warn("no checkpoint in '{}': starting from scratch", ckpt.string());
  }

  const int64_t n = fit.size();
  const int64_t h = fit.images.size(2), w = fit.images.size(3);
  auto padded = o.pad > 0 ? torch::constant_pad_nd(fit.images, {o.pad, o.pad, o.pad, o.pad}, 0) : fit.images;
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  double total_images = 0, total_seconds = 0;

  for (int64_t epoch = start_epoch; epoch < o.epochs && !stopped; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    net->train();
    at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    auto perm = torch::randperm(n, gen, torch::kInt64);
    Progress bar(fmt::format("epoch {}/{}", epoch + 1, o.epochs), n, o.progress);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    double lr = o.lr;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      lr = scheduled_lr(o, epoch + static_cast<double>(step) / steps_per_epoch);
      for (auto& group : opt.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      int64_t b = std::min(o.batch_size, n - step * o.batch_size);
      auto idx = perm.narrow(0, step * o.batch_size, b);
      auto x = augment(padded, idx, o.pad, o.flip, gen, h, w);
      auto y = fit.labels.index_select(0, idx);
      // The adversarial batch is made with the network in training mode (batch statistics, the
      // running statistics updated by each forward pass), as Wong et al.'s and Madry-style
      // PyTorch code do; its noise comes from the epoch's seeded generator, after the batch's
      // augmentation draws, so a run is reproducible from its seed.
      if (adversarial) x = adversarial_batch(*net, x, y, o, gen);
      opt.zero_grad();
      torch::Tensor logits = forward_logits(*net, x, o.precision == "bf16");
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>() * b;
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      seen += b;
      bar.advance(b, fmt::format("{}loss {:.3f} acc {:.1f}% lr {:.4f}", adversarial ? "adv " : "", loss_sum / seen,
                                 100.0 * correct / seen, lr));
    }
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.lr = lr;
    rec.train_loss = loss_sum / seen;
    rec.train_accuracy = static_cast<double>(correct) / seen;
    rec.seconds = bar.elapsed_seconds();
    total_images += seen;
    total_seconds += rec.seconds;
    bar.finish();
    bool last = epoch + 1 == o.epochs;
    if (test_set.size() > 0 && (last || (o.eval_every > 0 && (epoch + 1) % o.eval_every == 0))) {
      auto clf = wrap_network(net, o.arch, o.arch);
      rec.test_accuracy = evaluate(*clf, test_set, 500, false).accuracy();
      for (auto& p : net->parameters()) p.set_requires_grad(true);
    }
    bool new_best = false;
    if (guard) {
      rec.robust_accuracy = guard_accuracy(*net, held, o);
      if (o.guard_override) rec.robust_accuracy = o.guard_override(rec.epoch, rec.robust_accuracy);
      if (result.best_epoch == 0 || rec.robust_accuracy > result.best_robust_accuracy) {
        new_best = true;
        result.best_epoch = rec.epoch;
        result.best_robust_accuracy = rec.robust_accuracy;
        best_weights = snapshot(*net);
      } else if (guard_collapsed(result.best_robust_accuracy, rec.robust_accuracy, o.guard_drop)) {
        stopped = true;
        result.stopped_epoch = rec.epoch;
        result.stop_reason = fmt::format(
            "catastrophic overfitting: PGD accuracy on the {} held-out images fell to {:.2f}%, below {:.0f}% of the "
            "best ({:.2f}% after epoch {}) and more than 10 points under it",
            guard_n, 100 * rec.robust_accuracy, 100 * (1 - o.guard_drop), 100 * result.best_robust_accuracy,
            result.best_epoch);
      }
    }
    rec.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    result.history.push_back(rec);
    spdlog::info("epoch {}/{}: loss {:.4f} train {:.2f}%{}{} ({}, {:.0f} img/s)", rec.epoch, o.epochs, rec.train_loss,
                 100 * rec.train_accuracy,
                 rec.test_accuracy >= 0 ? fmt::format(" test {:.2f}%", 100 * rec.test_accuracy) : "",
                 guard ? fmt::format(" robust {:.2f}%", 100 * rec.robust_accuracy) : "",
                 format_duration(rec.wall_seconds), seen / rec.seconds);

    // Checkpoint: epoch-numbered files first, then the state file that points at them.
    save_network(net, o.arch, k, ckpt / fmt::format("model-{}.pt", epoch + 1));
    save_optimizer(opt, ckpt / fmt::format("optim-{}.pt", epoch + 1));
    if (new_best) save_network(net, o.arch, k, ckpt / fmt::format("best-{}.pt", rec.epoch));
    nlohmann::json state;
    state["config"] = config;
    state["epochs_done"] = epoch + 1;
    state["history"] = nlohmann::json::array();
    for (const auto& r : result.history) state["history"].push_back(record_json(r, guard));
    if (guard) {
      state["best_epoch"] = result.best_epoch;
      state["best_robust_accuracy"] = result.best_robust_accuracy;
    }
    if (stopped) state["stopped_early"] = {{"epoch", result.stopped_epoch}, {"reason", result.stop_reason}};
    write_file_atomic(state_file, state.dump(2));
    std::error_code ec;
    fs::remove(ckpt / fmt::format("model-{}.pt", epoch), ec);
    fs::remove(ckpt / fmt::format("optim-{}.pt", epoch), ec);
    if (new_best) {
      for (int64_t e = 1; e < rec.epoch; ++e) fs::remove(ckpt / fmt::format("best-{}.pt", e), ec);
    }
    if (stopped) {
      spdlog::warn("stopping after epoch {}: {}; rolling back to epoch {}", rec.epoch, result.stop_reason,
                   result.best_epoch);
      restore(*net, best_weights);
    }
  }

  save_network(net, o.arch, k, o.out);
  result.test_accuracy = result.history.empty() ? -1 : result.history.back().test_accuracy;
  if (stopped && test_set.size() > 0) {
    // The rolled-back weights' test accuracy.
    auto clf = wrap_network(net, o.arch, o.arch);
    result.test_accuracy = evaluate(*clf, test_set, 500, false).accuracy();
  }
  result.images_per_second = total_seconds > 0 ? total_images / total_seconds : 0;
  for (const auto& r : result.history) result.seconds += r.wall_seconds;
  nlohmann::json log;
  log["config"] = config;
  log["test_accuracy"] = result.test_accuracy;
  log["test_images"] = test_set.size();
  log["history"] = nlohmann::json::parse(read_file(state_file))["history"];
  log["seconds"] = result.seconds;
  if (guard) {
    log["guard_images"] = guard_n;
    log["best_epoch"] = result.best_epoch;
    log["best_robust_accuracy"] = result.best_robust_accuracy;
  }
  if (stopped) {
    log["stopped_early"] = {{"epoch", result.stopped_epoch}, {"best_epoch", result.best_epoch},
                            {"reason", result.stop_reason}};
  }
  log["version"] = version_string();
  log["threads"] = torch::get_num_threads();
  write_file_atomic(fs::path(o.out.string() + ".json"), log.dump(2));
  return result;
}

}  // namespace sdsgsm
