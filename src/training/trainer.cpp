#include <cmath>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

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
  make_network(arch);  // throws for an unknown architecture
}

nlohmann::json TrainOptions::to_json() const {
  return {{"arch", arch},       {"epochs", epochs},     {"batch_size", batch_size},
          {"lr", lr},          {"momentum", momentum}, {"weight_decay", weight_decay},
          {"nesterov", nesterov}, {"schedule", schedule}, {"warmup_epochs", warmup_epochs},
          {"pad", pad},        {"flip", flip},         {"seed", seed}, {"precision", precision}};
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
    torch::NoGradGuard ng;
    auto src = loaded.net->named_parameters(true);
    for (auto& p : net->named_parameters(true)) p.value().copy_(src[p.key()]);
    auto srcb = loaded.net->named_buffers(true);
    for (auto& b : net->named_buffers(true)) b.value().copy_(srcb[b.key()]);
    torch::load(opt, (ckpt / fmt::format("optim-{}.pt", start_epoch)).string());
    for (const auto& h : state["history"]) {
      EpochRecord r;
      r.epoch = h["epoch"]; r.lr = h["lr"]; r.train_loss = h["train_loss"];
      r.train_accuracy = h["train_accuracy"]; r.test_accuracy = h["test_accuracy"]; r.seconds = h["seconds"];
      result.history.push_back(r);
    }
    spdlog::info("resuming from '{}' after epoch {}", ckpt.string(), start_epoch);
  } else if (o.resume) {
    spdlog::warn("no checkpoint in '{}': starting from scratch", ckpt.string());
  }

  const int64_t n = train_set.size();
  const int64_t h = train_set.images.size(2), w = train_set.images.size(3);
  auto padded = o.pad > 0 ? torch::constant_pad_nd(train_set.images, {o.pad, o.pad, o.pad, o.pad}, 0)
                          : train_set.images;
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  double total_images = 0, total_seconds = 0;

  for (int64_t epoch = start_epoch; epoch < o.epochs; ++epoch) {
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
      auto y = train_set.labels.index_select(0, idx);
      opt.zero_grad();
      torch::Tensor logits;
      if (o.precision == "bf16") {
        // Mixed precision: convolutions and linear layers in bfloat16, the loss in float32.
        at::autocast::set_cpu_enabled(true);
        logits = net->forward(x).to(torch::kFloat32);
        at::autocast::set_cpu_enabled(false);
        at::autocast::clear_cache();
      } else {
        logits = net->forward(x);
      }
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>() * b;
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      seen += b;
      bar.advance(b, fmt::format("loss {:.3f} acc {:.1f}% lr {:.4f}", loss_sum / seen, 100.0 * correct / seen, lr));
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
    result.history.push_back(rec);
    spdlog::info("epoch {}/{}: loss {:.4f} train {:.2f}%{} ({}, {:.0f} img/s)", rec.epoch, o.epochs, rec.train_loss,
                 100 * rec.train_accuracy,
                 rec.test_accuracy >= 0 ? fmt::format(" test {:.2f}%", 100 * rec.test_accuracy) : "",
                 format_duration(rec.seconds), seen / rec.seconds);

    // Checkpoint: epoch-numbered files first, then the state file that points at them.
    save_network(net, o.arch, k, ckpt / fmt::format("model-{}.pt", epoch + 1));
    save_optimizer(opt, ckpt / fmt::format("optim-{}.pt", epoch + 1));
    nlohmann::json state;
    state["config"] = config;
    state["epochs_done"] = epoch + 1;
    state["history"] = nlohmann::json::array();
    for (const auto& r : result.history) {
      state["history"].push_back({{"epoch", r.epoch}, {"lr", r.lr}, {"train_loss", r.train_loss},
                                  {"train_accuracy", r.train_accuracy}, {"test_accuracy", r.test_accuracy},
                                  {"seconds", r.seconds}});
    }
    write_file_atomic(state_file, state.dump(2));
    std::error_code ec;
    fs::remove(ckpt / fmt::format("model-{}.pt", epoch), ec);
    fs::remove(ckpt / fmt::format("optim-{}.pt", epoch), ec);
  }

  save_network(net, o.arch, k, o.out);
  result.test_accuracy = result.history.empty() ? -1 : result.history.back().test_accuracy;
  result.images_per_second = total_seconds > 0 ? total_images / total_seconds : 0;
  nlohmann::json log;
  log["config"] = config;
  log["test_accuracy"] = result.test_accuracy;
  log["test_images"] = test_set.size();
  log["history"] = nlohmann::json::parse(read_file(state_file))["history"];
  log["version"] = version_string();
  log["threads"] = torch::get_num_threads();
  write_file_atomic(fs::path(o.out.string() + ".json"), log.dump(2));
  return result;
}

}  // namespace sdsgsm
