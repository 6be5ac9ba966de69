// Robust accuracy under a sequence of attacks (see include/sdsgsm/robust.hpp): the options, the
// sequence run batch by batch, and the resume from the per-batch files; the masking checks are in
// robust_checks.cpp, the files written in src/report/robust_report.cpp.
#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "robust_internal.hpp"
#include "sdsgsm/eot.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/robust_options.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
namespace {

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

}  // namespace

namespace robust_detail {

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

}  // namespace robust_detail

namespace {

constexpr int64_t kPlusRestarts = 5;  ///< AutoAttack's plus: APGD-CE and APGD-DLR restarts
constexpr int64_t kRandEot = 20;      ///< AutoAttack's rand: passes averaged per step
constexpr int64_t kL1Restarts = 5;    ///< AutoAttack's l1 standard: APGD-CE restarts
constexpr int64_t kL1Targets = 5;     ///< AutoAttack's l1 standard: APGD-T target classes

}  // namespace

std::string RobustOptions::version() const { return attacks.empty() ? ensemble : "custom"; }

std::vector<RobustStagePlan> RobustOptions::plan() const {
  const std::string v = version();
  const int64_t eot = eot_samples > 0 ? eot_samples : v == "rand" ? kRandEot : 1;
  auto stage = [&](const std::string& name, int64_t r) {
    RobustStagePlan p;
    p.attack = attack_info(name).name;
    p.restarts = r;
    p.eot_samples = p.attack == kApgdCe || p.attack == kApgdDlr || p.attack == kApgdT ? eot : 1;  // APGD's option
    return p;
  };
  std::vector<RobustStagePlan> out;
  if (v == "custom") {
    for (const auto& name : attacks) out.push_back(stage(name, restarts));
  } else if (v == "plus") {
    // AutoAttack's plus order: apgd-ce, apgd-dlr, fab (untargeted: none here), square, apgd-t, fab-t.
    out = {stage(kApgdCe, kPlusRestarts), stage(kApgdDlr, kPlusRestarts), stage(kSquare, 1), stage(kApgdT, 1),
           stage(kFabT, 1)};
  } else if (v == "rand") {
    out = {stage(kApgdCe, 1), stage(kApgdDlr, 1)};
  } else {
    // The registry's ensemble (all four run in every norm).
    // In l1 AutoAttack's standard version runs APGD-CE with 5 restarts and APGD-T with 5 targets,
    // each restart through the radii 3 eps, 2 eps, eps.
    const auto traits = norm == Norm::L2 ? kEnsemble | kL2 : norm == Norm::L1 ? kEnsemble | kL1 : kEnsemble;
    for (const auto& name : attack_names(traits)) {
      RobustStagePlan p = stage(name, restarts);
      if (norm == Norm::L1 && (p.attack == kApgdCe || p.attack == kApgdT)) {
        p.shrinking_radius = true;
        if (p.attack == kApgdCe) p.restarts = std::max(restarts, kL1Restarts);
        if (p.attack == kApgdT) p.targets = kL1Targets;
      }
      out.push_back(p);
    }
  }
  return out;
}

std::vector<std::string> RobustOptions::sequence() const {
  std::vector<std::string> names;
  for (const auto& p : plan()) names.push_back(p.attack);
  return names;
}

const OptionSet<RobustOptions>& robust_option_set() {
  using O = RobustOptions;
  static const OptionSet<O> set(
      "robust",
      {
          option("ensemble", &O::ensemble,
                 "AutoAttack's version: standard (APGD-CE, APGD-T, FAB-T, Square), plus (APGD-CE and APGD-DLR with 5 "
                 "restarts, Square, APGD-T, FAB-T), rand (APGD-CE and APGD-DLR averaging 20 passes per step, for "
                 "randomised models) or custom (--attacks). A randomised model switches the default to rand; a version "
                 "asked for stops instead")
              .one_of({"standard", "plus", "rand", "custom"}),
          option("eot-samples", &O::eot_samples,
                 "APGD: each step's gradient averaged over this many passes (0: the version's, rand 20, else 1)")
              .at_least(0),
          option("steps", &O::steps, "APGD and FAB-T iterations").at_least(1),
          option("restarts", &O::restarts, "APGD and FAB-T random restarts (per target of apgd-t, fab-t; l1 standard: APGD-CE at least 5)").at_least(1),
          option("queries", &O::queries, "Square's model queries per image").at_least(1),
          option("square-schedule", &O::square_schedule,
                 "How Square's window shrinks: autoattack (the queries as counted, AutoAttack's standard version) or "
                 "stretched (the 10,000-query schedule over --queries)")
              .one_of({"autoattack", "stretched"}),
          option("seed", &O::seed, "Seed of the random starts and Square's search"),
          option("check-count", &O::check_count,
                 "Images (the first) of the more-steps and large-eps masking checks (0: skip them)")
              .at_least(0),
      });
  return set;
}

void RobustOptions::validate() const {
  if (norm == Norm::Linf && (!(eps > 0) || eps > 1)) throw Error(fmt::format("--eps must be in (0,1] (got {})", eps));
  if (norm != Norm::Linf && (!(eps > 0) || !std::isfinite(eps))) throw Error(fmt::format("--eps must be > 0 (got {})", eps));
  robust_option_set().validate(*this);
  if (ensemble == "custom" && attacks.empty()) throw Error("--ensemble custom needs --attacks (the sequence)");
  if (!attacks.empty() && ensemble_given && ensemble != "custom") {
    throw Error(fmt::format("--attacks is a custom sequence: give it without --ensemble {} (or with --ensemble custom)",
                            ensemble));
  }
  check_batch_size(batch_size);
  for (const auto& name : attacks) {
    const AttackInfo& info = attack_info(name);  // throws for an unknown name
    if (!info.bounded) throw Error(fmt::format("--attacks: {} is unbounded (a minimum-norm attack); robust accuracy needs an eps budget", name));
  }
  for (const auto& p : plan()) make_stage_attack(p, eps);  // the attack's own checks (norm, ...)
}

AttackOptions RobustOptions::attack_options(const RobustStagePlan& stage, double budget) const {
  const AttackInfo& info = attack_info(stage.attack);
  AttackOptions o;
  o.set_eps(budget).set_seed(seed);
  if (info.family == AttackFamily::Adaptive) {
    o.set_norm(norm).set_steps(steps).set_restarts(stage.restarts).set_targets(stage.targets);
    o.set_shrinking_radius(stage.shrinking_radius);
  } else if (info.family == AttackFamily::ScoreBased) {
    o.set_steps(queries).set_square_schedule(square_schedule);
    if (norm != Norm::Linf) o.set_norm(norm);
  } else {
    if (norm != Norm::Linf) o.set_norm(norm);  // refused by the l_inf engine
    o.set_steps(info.default_steps);
  }
  return o;
}

std::unique_ptr<Attack> RobustOptions::make_stage_attack(const RobustStagePlan& stage, double budget) const {
  return make_apgd_eot(stage.attack, attack_options(stage, budget), stage.eot_samples);
}

std::unique_ptr<Attack> RobustOptions::make_stage_attack(const std::string& name, double budget) const {
  const std::string canonical = attack_info(name).name;
  for (const auto& p : plan()) {
    if (p.attack == canonical) return make_stage_attack(p, budget);
  }
  return make_attack(canonical, attack_options(canonical, budget));
}

AttackOptions RobustOptions::attack_options(const std::string& name, double budget) const {
  const std::string canonical = attack_info(name).name;
  for (const auto& p : plan()) {
    if (p.attack == canonical) return attack_options(p, budget);
  }
  RobustStagePlan p;
  p.attack = canonical;
  p.restarts = restarts;
  p.eot_samples = 1;
  return attack_options(p, budget);
}

nlohmann::json RobustOptions::to_json() const {
  nlohmann::json j = {{"eps", eps},         {"norm", to_string(norm)}, {"attacks", sequence()}, {"steps", steps},
                      {"restarts", restarts}, {"queries", queries},     {"square_schedule", square_schedule}, {"seed", seed},
                      {"check_count", check_count}, {"ensemble", version()}};
  if (eot_samples > 0) j["eot_samples"] = eot_samples;
  return j;
}

RobustResult robust_accuracy(Classifier& model, const ImageSource& source, const RobustOptions& given, const fs::path& work) {
  given.validate();
  RobustResult res;
  // The model's checks on the first batch decide the version (randomised: rand) and the sequence
  // (2 classes: no DLR).
  RobustOptions o = given;
  std::vector<RobustCheck> model_checks;
  const std::vector<RobustStagePlan> plan = robust_detail::checked_plan(model, source, o, res, model_checks);
  std::vector<std::string> names;
  std::vector<std::unique_ptr<Attack>> attacks;
  for (const auto& p : plan) {
    names.push_back(p.attack);
    attacks.push_back(o.make_stage_attack(p, o.eps));
  }
  const int64_t n = source.size(), batches = (n + o.batch_size - 1) / o.batch_size;
  const int64_t robust_code = static_cast<int64_t>(names.size());
  if (!work.empty()) fs::create_directories(work / "batches");

  res.images = n;
  res.ensemble = o.version();
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
        torch::Tensor hit = robust_detail::attack_rows(model, *attacks[k], x, y, ids.to(o.device), rows.to(o.device), &stage);
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

  robust_detail::add_masking_checks(model, source, o, names, res, work.empty() ? fs::path() : work / "checks.json");
  for (auto& c : model_checks) res.checks.push_back(std::move(c));
  return res;
}

}  // namespace sdsgsm
