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

}  // namespace

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

namespace {

/// A run in progress: the network, its optimiser, the result so far and the guard's state.
struct Run {
  explicit Run(const TrainOptions& options) : o(options) {}
  const TrainOptions& o;
  std::shared_ptr<Network> net;
  std::unique_ptr<torch::optim::SGD> opt;
  int64_t classes = 0;
  fs::path ckpt;           ///< the checkpoint folder
  nlohmann::json config;   ///< what a resume must match
  int64_t guard_n = 0;     ///< the guard's held-out images (0: no guard)
  TrainResult result;
  Weights best_weights;  ///< the guard's best epoch
  bool stopped = false;
};

/// Continues from run.ckpt's checkpoint (--resume): weights, optimiser, history, the guard's state; the epochs done.
int64_t resume(Run& run) {
  if (!run.o.resume) return 0;
  auto state = TrainCheckpoint::load(run.ckpt);
  if (!state) {
    spdlog::warn("no checkpoint in '{}': starting from scratch", run.ckpt.string());
    return 0;
  }
  if (state->config != run.config) {
    throw Error(fmt::format("cannot resume from '{}': it was made with other options ({})", run.ckpt.string(),
                            state->config.dump()));
  }
  const int64_t done = state->epochs_done;
  restore(*run.net, snapshot(*load_network(run.ckpt / fmt::format("model-{}.pt", done)).net));
  torch::load(*run.opt, (run.ckpt / fmt::format("optim-{}.pt", done)).string());
  run.result.history = state->history;
  if (state->guard) {
    run.result.best_epoch = state->best_epoch;
    run.result.best_robust_accuracy = state->best_robust_accuracy;
    run.best_weights = snapshot(*load_network(run.ckpt / fmt::format("best-{}.pt", state->best_epoch)).net);
  }
  if (state->stopped_epoch > 0) {
    run.stopped = true;
    run.result.stopped_epoch = state->stopped_epoch;
    run.result.stop_reason = state->stop_reason;
    restore(*run.net, run.best_weights);
  }
  spdlog::info("resuming from '{}' after epoch {}", run.ckpt.string(), done);
  return done;
}

/// One epoch of training on `fit` (its images zero-padded by o.pad in `padded`): the record's
/// lr, loss, accuracy and seconds; `seen` counts the images trained on.
EpochRecord train_epoch(Run& run, const Dataset& fit, const torch::Tensor& padded, int64_t epoch, int64_t& seen) {
  const TrainOptions& o = run.o;
  Network& net = *run.net;
  const int64_t n = fit.size(), h = fit.images.size(2), w = fit.images.size(3);
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const bool adversarial = o.adversarial != "none";
  net.train();
  at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  auto perm = torch::randperm(n, gen, torch::kInt64);
  Progress bar(fmt::format("epoch {}/{}", epoch + 1, o.epochs), n, o.progress);
  double loss_sum = 0;
  int64_t correct = 0;
  seen = 0;
  double lr = o.lr;
  for (int64_t step = 0; step < steps_per_epoch; ++step) {
    lr = scheduled_lr(o, epoch + static_cast<double>(step) / steps_per_epoch);
    for (auto& group : run.opt->param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    int64_t b = std::min(o.batch_size, n - step * o.batch_size);
    auto idx = perm.narrow(0, step * o.batch_size, b);
    auto x = augment(padded, idx, o.pad, o.flip, gen, h, w);
    auto y = fit.labels.index_select(0, idx);
    // The adversarial batch is made with the network in training mode (batch statistics, the
    // running statistics updated by each forward pass), as Wong et al.'s and Madry-style
    // PyTorch code do; its noise comes from the epoch's seeded generator, after the batch's
    // augmentation draws, so a run is reproducible from its seed.
    if (adversarial) x = adversarial_batch(net, x, y, o, gen);
    run.opt->zero_grad();
    torch::Tensor logits = forward_logits(net, x, o.precision == "bf16");
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    loss.backward();
    run.opt->step();
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
  bar.finish();
  return rec;
}

/// The guard after an epoch: measures rec.robust_accuracy on `held`, keeps the best epoch's
/// weights, and stops the run when the accuracy collapsed. Returns whether the epoch is the best.
bool guard_epoch(Run& run, EpochRecord& rec, const Dataset& held) {
  const TrainOptions& o = run.o;
  TrainResult& result = run.result;
  rec.robust_accuracy = guard_accuracy(*run.net, held, o);
  if (o.guard_override) rec.robust_accuracy = o.guard_override(rec.epoch, rec.robust_accuracy);
  if (result.best_epoch == 0 || rec.robust_accuracy > result.best_robust_accuracy) {
    result.best_epoch = rec.epoch;
    result.best_robust_accuracy = rec.robust_accuracy;
    run.best_weights = snapshot(*run.net);
    return true;
  }
  if (guard_collapsed(result.best_robust_accuracy, rec.robust_accuracy, o.guard_drop)) {
    run.stopped = true;
    result.stopped_epoch = rec.epoch;
    result.stop_reason = fmt::format(
        "catastrophic overfitting: PGD accuracy on the {} held-out images fell to {:.2f}%, below {:.0f}% of the "
        "best ({:.2f}% after epoch {}) and more than 10 points under it",
        run.guard_n, 100 * rec.robust_accuracy, 100 * (1 - o.guard_drop), 100 * result.best_robust_accuracy,
        result.best_epoch);
  }
  return false;
}

/// The checkpoint after epoch `done`: epoch-numbered files first, then the state that points at
/// them; the previous epoch's files (and older best weights) are removed.
void write_checkpoint(Run& run, int64_t done, bool new_best) {
  const fs::path& ckpt = run.ckpt;
  save_network(run.net, run.o.arch, run.classes, ckpt / fmt::format("model-{}.pt", done));
  save_optimizer(*run.opt, ckpt / fmt::format("optim-{}.pt", done));
  if (new_best) save_network(run.net, run.o.arch, run.classes, ckpt / fmt::format("best-{}.pt", done));
  TrainCheckpoint state;
  state.config = run.config;
  state.epochs_done = done;
  state.history = run.result.history;
  state.guard = run.guard_n > 0;
  state.best_epoch = run.result.best_epoch;
  state.best_robust_accuracy = run.result.best_robust_accuracy;
  if (run.stopped) {
    state.stopped_epoch = run.result.stopped_epoch;
    state.stop_reason = run.result.stop_reason;
  }
  state.save(ckpt);
  std::error_code ec;
  fs::remove(ckpt / fmt::format("model-{}.pt", done - 1), ec);
  fs::remove(ckpt / fmt::format("optim-{}.pt", done - 1), ec);
  if (new_best) {
    for (int64_t e = 1; e < done; ++e) fs::remove(ckpt / fmt::format("best-{}.pt", e), ec);
  }
}

/// The JSON log beside the weights (<out>.json): the options, the history and the guard's outcome.
void write_log(const Run& run, int64_t test_images) {
  const TrainResult& result = run.result;
  nlohmann::json log;
  log["config"] = run.config;
  log["test_accuracy"] = result.test_accuracy;
  log["test_images"] = test_images;
  log["history"] = nlohmann::json::array();
  for (const auto& r : result.history) log["history"].push_back(r.to_json(run.guard_n > 0));
  log["seconds"] = result.seconds;
  if (run.guard_n > 0) {
    log["guard_images"] = run.guard_n;
    log["best_epoch"] = result.best_epoch;
    log["best_robust_accuracy"] = result.best_robust_accuracy;
  }
  if (run.stopped) {
    log["stopped_early"] = {{"epoch", result.stopped_epoch}, {"best_epoch", result.best_epoch},
                            {"reason", result.stop_reason}};
  }
  log["version"] = version_string();
  log["threads"] = torch::get_num_threads();
  write_file_atomic(fs::path(run.o.out.string() + ".json"), log.dump(2));
}

}  // namespace

TrainResult train_network(const TrainOptions& o, const Dataset& train_set, const Dataset& test_set) {
  o.validate();
  if (train_set.size() == 0) throw Error("the training set is empty");
  Run run(o);
  run.guard_n = o.adversarial != "none" ? o.guard_count : 0;
  const bool guard = run.guard_n > 0;
  if (guard && run.guard_n >= train_set.size()) {
    throw Error(fmt::format("--guard-count ({}) must be below the number of training images ({})", run.guard_n,
                            train_set.size()));
  }
  // The guard's images: the last guard_n of the training set, not trained on.
  const Dataset fit = guard ? train_set.slice(0, train_set.size() - run.guard_n) : train_set;
  const Dataset held = guard ? train_set.slice(train_set.size() - run.guard_n, run.guard_n) : Dataset{};
  run.classes = train_set.num_classes();
  run.ckpt = o.checkpoint_dir.empty() ? fs::path(o.out.string() + ".ckpt") : o.checkpoint_dir;
  if (o.out.has_parent_path()) fs::create_directories(o.out.parent_path());
  fs::create_directories(run.ckpt);

  torch::manual_seed(o.seed);
  run.net = make_network(o.arch, run.classes);
  run.opt = std::make_unique<torch::optim::SGD>(
      run.net->parameters(),
      torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay).nesterov(o.nesterov));
  run.config = o.to_json();
  run.config["train_images"] = train_set.size();
  const int64_t start_epoch = resume(run);

  auto padded = o.pad > 0 ? torch::constant_pad_nd(fit.images, {o.pad, o.pad, o.pad, o.pad}, 0) : fit.images;
  double total_images = 0, total_seconds = 0;
  TrainResult& result = run.result;
  for (int64_t epoch = start_epoch; epoch < o.epochs && !run.stopped; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    int64_t seen = 0;
    EpochRecord rec = train_epoch(run, fit, padded, epoch, seen);
    total_images += seen;
    total_seconds += rec.seconds;
    const bool last = epoch + 1 == o.epochs;
    if (test_set.size() > 0 && (last || (o.eval_every > 0 && (epoch + 1) % o.eval_every == 0))) {
      auto clf = wrap_network(run.net, o.arch, o.arch);
      rec.test_accuracy = evaluate(*clf, test_set, 500, false).accuracy();
      for (auto& p : run.net->parameters()) p.set_requires_grad(true);
    }
    const bool new_best = guard && guard_epoch(run, rec, held);
    rec.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    result.history.push_back(rec);
    spdlog::info("epoch {}/{}: loss {:.4f} train {:.2f}%{}{} ({}, {:.0f} img/s)", rec.epoch, o.epochs, rec.train_loss,
                 100 * rec.train_accuracy,
                 rec.test_accuracy >= 0 ? fmt::format(" test {:.2f}%", 100 * rec.test_accuracy) : "",
                 guard ? fmt::format(" robust {:.2f}%", 100 * rec.robust_accuracy) : "",
                 format_duration(rec.wall_seconds), seen / rec.seconds);
    write_checkpoint(run, epoch + 1, new_best);
    if (run.stopped) {
      spdlog::warn("stopping after epoch {}: {}; rolling back to epoch {}", rec.epoch, result.stop_reason,
                   result.best_epoch);
      restore(*run.net, run.best_weights);
    }
  }

  save_network(run.net, o.arch, run.classes, o.out);
  result.test_accuracy = result.history.empty() ? -1 : result.history.back().test_accuracy;
  if (run.stopped && test_set.size() > 0) {
    // The rolled-back weights' test accuracy.
    auto clf = wrap_network(run.net, o.arch, o.arch);
    result.test_accuracy = evaluate(*clf, test_set, 500, false).accuracy();
  }
  result.images_per_second = total_seconds > 0 ? total_images / total_seconds : 0;
  for (const auto& r : result.history) result.seconds += r.wall_seconds;
  write_log(run, test_set.size());
  return result;
}

}  // namespace sdsgsm
