// Robust accuracy under a sequence of attacks, and the masking checks (see include/sdsgsm/robust.hpp).
#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/robust.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
namespace {

constexpr double kLargeLinf = 0.5;  ///< the large-eps check's l_inf budget (l2: times sqrt(C H W))

std::string eps_text(double eps, Norm norm) {
  if (norm == Norm::Linf) return fmt::format("l_inf {:.4g} ({:.3g}/255)", eps, eps * 255);
  return fmt::format("l2 {:.4g}", eps);
}

/// One batch's outcome: per image the stage that fooled it (as RobustResult::fooled_by) and the
/// clean prediction; per stage its counts.
struct BatchOutcome {
  torch::Tensor clean_pred, fooled_by;
  std::vector<RobustStage> stages;

  nlohmann::json to_json() const {
    nlohmann::json j;
    j["clean_pred"] = std::vector<int64_t>(clean_pred.data_ptr<int64_t>(), clean_pred.data_ptr<int64_t>() + clean_pred.numel());
    j["fooled_by"] = std::vector<int64_t>(fooled_by.data_ptr<int64_t>(), fooled_by.data_ptr<int64_t>() + fooled_by.numel());
    for (const auto& s : stages) {
      j["stages"].push_back({{"attacked", s.attacked}, {"fooled", s.fooled}, {"forward", s.forward_passes},
                             {"backward", s.backward_passes}, {"seconds", s.seconds}});
    }
    return j;
  }
  static BatchOutcome from_json(const nlohmann::json& j, const std::vector<std::string>& names) {
    BatchOutcome b;
    b.clean_pred = torch::tensor(j.at("clean_pred").get<std::vector<int64_t>>(), torch::kInt64);
    b.fooled_by = torch::tensor(j.at("fooled_by").get<std::vector<int64_t>>(), torch::kInt64);
    const auto& st = j.at("stages");
    if (st.size() != names.size()) throw Error("a robust batch file does not match the sequence");
    for (size_t k = 0; k < names.size(); ++k) {
      RobustStage s;
      s.attack = names[k];
      s.attacked = st[k].at("attacked").get<int64_t>();
      s.fooled = st[k].at("fooled").get<int64_t>();
      s.forward_passes = st[k].at("forward").get<int64_t>();
      s.backward_passes = st[k].at("backward").get<int64_t>();
      s.seconds = st[k].at("seconds").get<double>();
      b.stages.push_back(s);
    }
    return b;
  }
};

/// Runs attack `a` on the images `rows` of x (still robust) and returns which of them it fooled.
torch::Tensor attack_rows(Classifier& model, const Attack& a, const torch::Tensor& x, const torch::Tensor& y,
                          const torch::Tensor& ids, const torch::Tensor& rows, RobustStage* stage) {
  if (rows.size(0) == 0) return torch::zeros({0}, torch::kBool);
  auto t0 = std::chrono::steady_clock::now();
  AttackResult r = a.run(model, x.index_select(0, rows), y.index_select(0, rows), ids.index_select(0, rows));
  if (stage) {
    stage->attacked += rows.size(0);
    stage->fooled += r.success.sum().item<int64_t>();
    stage->forward_passes += r.forward_passes.sum().item<int64_t>();
    stage->backward_passes += r.backward_passes.sum().item<int64_t>();
    stage->seconds += seconds_since(t0);
  }
  return r.success.cpu();
}

}  // namespace

std::vector<std::string> RobustOptions::sequence() const {
  if (!attacks.empty()) return attacks;
  // The registry's ensemble; in l2 the ones that run in l2 (no l2 Square yet).
  return attack_names(norm == Norm::L2 ? kEnsemble | kL2 : kEnsemble);
}

void RobustOptions::validate() const {
  if (norm == Norm::Linf && (!(eps > 0) || eps > 1)) throw Error(fmt::format("--eps must be in (0,1] (got {})", eps));
  if (norm == Norm::L2 && (!(eps > 0) || !std::isfinite(eps))) throw Error(fmt::format("--eps must be > 0 (got {})", eps));
  if (steps < 1) throw Error(fmt::format("--steps must be >= 1 (got {})", steps));
  if (restarts < 1) throw Error(fmt::format("--restarts must be >= 1 (got {})", restarts));
  if (queries < 1) throw Error(fmt::format("--queries must be >= 1 (got {})", queries));
  if (check_count < 0) throw Error(fmt::format("--check-count must be >= 0 (got {})", check_count));
  check_batch_size(batch_size);
  for (const auto& name : sequence()) {
    const AttackInfo& info = attack_info(name);  // throws for an unknown name
    if (!info.bounded) throw Error(fmt::format("--attacks: {} is unbounded (a minimum-norm attack); robust accuracy needs an eps budget", name));
    make_attack(info.name, attack_options(info.name, eps));  // the attack's own checks (norm, ...)
  }
}

AttackOptions RobustOptions::attack_options(const std::string& name, double budget) const {
  const AttackInfo& info = attack_info(name);
  AttackOptions o;
  o.set_eps(budget).set_seed(seed);
  if (info.family == AttackFamily::Adaptive) {
    o.set_norm(norm).set_steps(steps).set_restarts(restarts);
  } else if (info.family == AttackFamily::ScoreBased) {
    o.set_steps(queries).set_square_schedule(square_schedule);
    if (norm == Norm::L2) o.set_norm(norm);  // refused by Square: it is l_inf
  } else {
    if (norm == Norm::L2) o.set_norm(norm);  // refused by the l_inf engine
    o.set_steps(info.default_steps);
  }
  return o;
}

nlohmann::json RobustOptions::to_json() const {
  return {{"eps", eps},         {"norm", to_string(norm)}, {"attacks", sequence()}, {"steps", steps},
          {"restarts", restarts}, {"queries", queries},     {"square_schedule", square_schedule}, {"seed", seed},         {"check_count", check_count}};
}

std::vector<std::string> RobustResult::warnings() const {
  std::vector<std::string> w;
  for (const auto& c : checks) {
    if (c.warned) w.push_back(fmt::format("gradient masking? ({}) {}", c.name, c.detail));
  }
  return w;
}

nlohmann::json RobustResult::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["clean_correct"] = clean_correct;
  j["robust"] = robust;
  j["clean_accuracy"] = clean_accuracy();
  j["robust_accuracy"] = robust_accuracy();
  j["attacks"] = nlohmann::json::array();
  for (const auto& s : stages) {
    j["attacks"].push_back({{"attack", s.attack},
                            {"label", s.label},
                            {"attacked", s.attacked},
                            {"fooled", s.fooled},
                            {"forward_passes", s.forward_passes},
                            {"backward_passes", s.backward_passes}});
  }
  j["checks"] = nlohmann::json::array();
  for (const auto& c : checks) {
    j["checks"].push_back({{"check", c.name}, {"ran", c.ran}, {"warned", c.warned}, {"detail", c.detail}});
  }
  j["warnings"] = warnings();
  j["notes"] = notes;
  return j;
}

std::string RobustResult::csv() const {
  std::string out = "index,label,clean_pred,fooled_by\n";
  const int64_t stages_n = static_cast<int64_t>(stages.size());
  for (int64_t i = 0; i < images; ++i) {
    const int64_t f = fooled_by[i].item<int64_t>();
    const std::string by = f < 0 ? "clean" : f >= stages_n ? "robust" : stages[f].attack;
    out += fmt::format("{},{},{},{}\n", index[i].item<int64_t>(), label[i].item<int64_t>(), clean_pred[i].item<int64_t>(), by);
  }
  return out;
}

std::string RobustResult::table(const std::string& title) const {
  std::string t = fmt::format("{}\n\n| attack | images attacked | fooled | robust accuracy after |\n|---|---:|---:|---:|\n", title);
  t += fmt::format("| (clean) | {} | {} | {:.2f}% |\n", images, images - clean_correct, 100 * clean_accuracy());
  int64_t left = clean_correct;
  for (const auto& s : stages) {
    left -= s.fooled;
    t += fmt::format("| {} | {} | {} | {:.2f}% |\n", s.label, s.attacked, s.fooled,
                     images ? 100.0 * static_cast<double>(left) / static_cast<double>(images) : 0.0);
  }
  t += fmt::format("\nrobust accuracy {:.2f}% ({} of {} images)\n", 100 * robust_accuracy(), robust, images);
  for (const auto& c : checks) {
    t += fmt::format("check {}: {}{}\n", c.name, !c.ran ? "not run" : c.warned ? "WARNING " : "ok ", c.detail);
  }
  for (const auto& n : notes) t += fmt::format("note: {}\n", n);
  return t;
}

RobustResult robust_accuracy(Classifier& model, const ImageSource& source, const RobustOptions& o, const fs::path& work) {
  o.validate();
  const std::vector<std::string> names = o.sequence();
  std::vector<std::unique_ptr<Attack>> attacks;
  for (const auto& name : names) attacks.push_back(make_attack(name, o.attack_options(name, o.eps)));
  const int64_t n = source.size(), batches = (n + o.batch_size - 1) / o.batch_size;
  const int64_t robust_code = static_cast<int64_t>(names.size());
  if (!work.empty()) fs::create_directories(work / "batches");

  RobustResult res;
  res.images = n;
  for (const auto& name : names) {
    RobustStage stage;
    stage.attack = attack_info(name).name;
    stage.label = attack_info(name).label;
    res.stages.push_back(stage);
  }
  std::vector<torch::Tensor> preds, fooled, labels;
  auto t_start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t start = b * o.batch_size, count = std::min(o.batch_size, n - start);
    const fs::path file = work.empty() ? fs::path() : work / "batches" / fmt::format("{:06d}.json", b);
    auto [x, y] = source.read_float(start, count);
    labels.push_back(y.to(torch::kInt64).cpu());
    BatchOutcome out;
    if (!file.empty() && fs::exists(file)) {
      out = BatchOutcome::from_json(nlohmann::json::parse(read_file(file)), names);
    } else {
      x = x.to(o.device);
      y = y.to(o.device).to(torch::kInt64);
      const torch::Tensor ids = torch::arange(o.first_index + start, o.first_index + start + count, torch::kInt64);
      out.clean_pred = predict(model, x).cpu();
      out.fooled_by = torch::full({count}, robust_code, torch::kInt64);
      out.fooled_by.masked_fill_(out.clean_pred.ne(y.cpu()), -1);
      for (size_t k = 0; k < attacks.size(); ++k) {
        RobustStage stage;
        torch::Tensor rows = out.fooled_by.eq(robust_code).nonzero().squeeze(1);
        torch::Tensor hit = attack_rows(model, *attacks[k], x, y, ids.to(o.device), rows.to(o.device), &stage);
        if (rows.size(0) > 0) out.fooled_by.index_fill_(0, rows.masked_select(hit), static_cast<int64_t>(k));
        out.stages.push_back(stage);
      }
      if (!file.empty()) write_file_atomic(file, out.to_json().dump());
    }
    for (size_t k = 0; k < res.stages.size(); ++k) {
      RobustStage& s = res.stages[k];
      s.attacked += out.stages[k].attacked;
      s.fooled += out.stages[k].fooled;
      s.forward_passes += out.stages[k].forward_passes;
      s.backward_passes += out.stages[k].backward_passes;
      s.seconds += out.stages[k].seconds;
    }
    preds.push_back(out.clean_pred);
    fooled.push_back(out.fooled_by);
    if (o.progress) {
      const int64_t done = start + count;
      spdlog::info("robust: {}/{} images, {:.0f} s", done, n, seconds_since(t_start));
    }
  }
  res.index = torch::arange(o.first_index, o.first_index + n, torch::kInt64);
  res.label = n ? torch::cat(labels) : torch::zeros({0}, torch::kInt64);
  res.clean_pred = n ? torch::cat(preds) : torch::zeros({0}, torch::kInt64);
  res.fooled_by = n ? torch::cat(fooled) : torch::zeros({0}, torch::kInt64);
  res.clean_correct = res.fooled_by.ge(0).sum().item<int64_t>();
  res.robust = res.fooled_by.eq(robust_code).sum().item<int64_t>();

  // The masking checks.
  const fs::path checks_file = work.empty() ? fs::path() : work / "checks.json";
  int64_t gradient_robust = -1, free_fooled = 0;
  std::string free_names;
  for (size_t k = 0; k < names.size(); ++k) {
    if (attack_info(names[k]).family == AttackFamily::ScoreBased) {
      free_fooled += res.stages[k].fooled;
      free_names += (free_names.empty() ? "" : ", ") + res.stages[k].label;
      if (gradient_robust < 0) gradient_robust = res.stages[k].attacked;
    }
  }
  auto named = [](const char* name) {
    RobustCheck c;
    c.name = name;
    return c;
  };
  RobustCheck free_check = named("gradient-free");
  if (!free_names.empty()) {
    free_check.ran = true;
    free_check.warned = free_fooled > 0;
    free_check.detail = fmt::format("{} fooled {} of the {} images the gradient attacks before it left robust", free_names,
                                    free_fooled, gradient_robust);
  } else {
    free_check.detail = "no gradient-free attack in the sequence";
    res.notes.push_back(o.norm == Norm::L2
                            ? "no gradient-free attack in the l2 sequence (Square is l_inf here): masking would not show"
                            : "no gradient-free attack in the sequence: masking would not show");
  }
  res.checks.push_back(free_check);

  RobustCheck steps_check = named("more-steps"), large_check = named("large-eps");
  const int64_t m = std::min(o.check_count, n);
  if (!checks_file.empty() && fs::exists(checks_file)) {
    auto j = nlohmann::json::parse(read_file(checks_file));
    for (auto* c : {&steps_check, &large_check}) {
      const auto& e = j.at(c->name);
      c->ran = e.at("ran").get<bool>();
      c->warned = e.at("warned").get<bool>();
      c->detail = e.at("detail").get<std::string>();
    }
  } else if (m > 0 && !names.empty()) {
    const std::string first = names[0];
    const AttackInfo& info = attack_info(first);
    auto [x, y] = source.read_float(0, m);
    x = x.to(o.device);
    y = y.to(o.device).to(torch::kInt64);
    const torch::Tensor ids = torch::arange(o.first_index, o.first_index + m, torch::kInt64).to(o.device);
    const torch::Tensor correct = res.fooled_by.narrow(0, 0, m).ge(0);
    const torch::Tensor rows = correct.nonzero().squeeze(1);
    const int64_t correct_n = rows.size(0);
    // Robust after the first attack at full strength: what the sequence's first stage left.
    const int64_t full_robust =
        res.fooled_by.narrow(0, 0, m).masked_select(correct).ne(0).sum().item<int64_t>();
    if (correct_n > 0) {
      if (info.family != AttackFamily::ScoreBased) {
        AttackOptions fewer = o.attack_options(first, o.eps);
        fewer.set_steps(std::max<int64_t>(fewer.steps / 5, 1));
        auto a = make_attack(first, fewer);
        const int64_t short_robust =
            correct_n - attack_rows(model, *a, x, y, ids, rows.to(o.device), nullptr).sum().item<int64_t>();
        steps_check.ran = true;
        steps_check.warned = full_robust > short_robust;
        steps_check.detail = fmt::format("{} left {} of {} images robust at {} steps, {} at {} steps", info.label,
                                         full_robust, correct_n, o.attack_options(first, o.eps).steps, short_robust,
                                         fewer.steps);
      }
      const double large = o.norm == Norm::Linf ? kLargeLinf : kLargeLinf * std::sqrt(static_cast<double>(x[0].numel()));
      auto a = make_attack(first, o.attack_options(first, large));
      const int64_t large_robust =
          correct_n - attack_rows(model, *a, x, y, ids, rows.to(o.device), nullptr).sum().item<int64_t>();
      large_check.ran = true;
      large_check.warned = large_robust > 0;
      large_check.detail = fmt::format("{} at {} left {} of {} images robust (expected: none)", info.label,
                                       eps_text(large, o.norm), large_robust, correct_n);
    }
    if (!checks_file.empty()) {
      nlohmann::json j;
      for (auto* c : {&steps_check, &large_check}) j[c->name] = {{"ran", c->ran}, {"warned", c->warned}, {"detail", c->detail}};
      write_file_atomic(checks_file, j.dump());
    }
  }
  if (!steps_check.ran && steps_check.detail.empty()) steps_check.detail = "not run (no images, or a gradient-free first attack)";
  if (!large_check.ran && large_check.detail.empty()) large_check.detail = "not run (no correctly classified image among the first)";
  res.checks.push_back(steps_check);
  res.checks.push_back(large_check);
  return res;
}

void write_robust_files(const fs::path& dir, nlohmann::json info, const RobustOptions& options,
                        const RobustResult& result, const std::string& title) {
  info["robust_options"] = options.to_json();
  info.update(result.to_json());
  write_file_atomic(dir / "robust.json", info.dump(2) + "\n");
  write_file_atomic(dir / "robust.csv", result.csv());
  write_file_atomic(dir / "robust.md", result.table(title));
  fs::remove_all(dir / "batches");
  fs::remove(dir / "checks.json");
}

}  // namespace sdsgsm
