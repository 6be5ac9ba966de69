// Robust accuracy as a curve over eps (see include/sdsgsm/robust_curve.hpp): the radii in
// increasing order, each attacking only the images still robust at the one before; the masking
// checks at the largest radius. The files are written by src/report/robust_curve_report.cpp.
#include "sdsgsm/robust_curve.hpp"

#include <chrono>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "robust_internal.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/progress.hpp"

namespace sdsgsm {
namespace {

nlohmann::json stage_json(const RobustStage& s) {
  return {{"attacked", s.attacked}, {"fooled", s.fooled}, {"forward", s.forward_passes},
          {"backward", s.backward_passes}, {"seconds", s.seconds}};
}

RobustStage stage_from_json(const nlohmann::json& j) {
  RobustStage s;
  s.attacked = j.at("attacked").get<int64_t>();
  s.fooled = j.at("fooled").get<int64_t>();
  s.forward_passes = j.at("forward").get<int64_t>();
  s.backward_passes = j.at("backward").get<int64_t>();
  s.seconds = j.at("seconds").get<double>();
  return s;
}

void add_stage(RobustStage& into, const RobustStage& s) {
  into.attacked += s.attacked;
  into.fooled += s.fooled;
  into.forward_passes += s.forward_passes;
  into.backward_passes += s.backward_passes;
  into.seconds += s.seconds;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

/// One batch: per image the clean prediction, the attack that fooled it and the radius it fell
/// at; per radius and attack the counts.
struct CurveBatch {
  torch::Tensor clean_pred, fooled_by, fooled_at;
  std::vector<std::vector<RobustStage>> stages;  // [radius][attack]

  nlohmann::json to_json() const {
    nlohmann::json j = {{"clean_pred", to_vector(clean_pred)}, {"fooled_by", to_vector(fooled_by)},
                        {"fooled_at", to_vector(fooled_at)}, {"radii", nlohmann::json::array()}};
    for (const auto& radius : stages) {
      nlohmann::json r = nlohmann::json::array();
      for (const auto& s : radius) r.push_back(stage_json(s));
      j["radii"].push_back(r);
    }
    return j;
  }
  static CurveBatch from_json(const nlohmann::json& j, size_t radii, size_t attacks) {
    CurveBatch b;
    b.clean_pred = torch::tensor(j.at("clean_pred").get<std::vector<int64_t>>(), torch::kInt64);
    b.fooled_by = torch::tensor(j.at("fooled_by").get<std::vector<int64_t>>(), torch::kInt64);
    b.fooled_at = torch::tensor(j.at("fooled_at").get<std::vector<int64_t>>(), torch::kInt64);
    const auto& r = j.at("radii");
    if (r.size() != radii) throw Error("a robust curve batch file does not match the radii");
    for (const auto& radius : r) {
      if (radius.size() != attacks) throw Error("a robust curve batch file does not match the sequence");
      b.stages.emplace_back();
      for (const auto& s : radius) b.stages.back().push_back(stage_from_json(s));
    }
    return b;
  }
};

}  // namespace

std::vector<double> parse_eps_list(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  size_t position = 0;
  while (std::getline(ss, item, ',')) {
    ++position;
    if (item.empty()) throw Error(fmt::format("{}: item {} of '{}' is empty (write e.g. 2/255,4/255,8/255)", flag, position, text));
    const double v = parse_number(item, flag);
    if (!out.empty() && !(v > out.back())) {
      throw Error(fmt::format("{}: the radii must be strictly increasing ('{}' follows {:.6g} in '{}')", flag, item, out.back(), text));
    }
    out.push_back(v);
  }
  if (out.empty() || text.back() == ',') throw Error(fmt::format("{}: '{}' holds an empty item (write e.g. 2/255,4/255,8/255)", flag, text));
  return out;
}

RobustCurve robust_curve(Classifier& model, const ImageSource& source, const RobustOptions& options,
                         const std::vector<double>& eps, const fs::path& work) {
  if (eps.empty()) throw Error("--eps: no radius given");
  RobustOptions o = options;
  for (size_t k = 0; k < eps.size(); ++k) {
    if (k > 0 && !(eps[k] > eps[k - 1])) throw Error(fmt::format("--eps: the radii must be strictly increasing (got {:.6g} after {:.6g})", eps[k], eps[k - 1]));
    o.set_eps(eps[k]).validate();  // each radius within the norm's range
  }
  // As robust_accuracy: the model's checks on the first batch decide the version and the sequence.
  RobustCurve curve;
  RobustResult& res = curve.result;
  std::vector<RobustCheck> model_checks;
  const std::vector<RobustStagePlan> plan = robust_detail::checked_plan(model, source, o, res, model_checks);
  std::vector<std::string> names;
  for (const auto& p : plan) names.push_back(p.attack);
  const size_t radii = eps.size(), m = names.size();
  std::vector<std::vector<std::unique_ptr<Attack>>> attacks(radii);
  for (size_t k = 0; k < radii; ++k) {
    for (const auto& p : plan) attacks[k].push_back(o.make_stage_attack(p, eps[k]));
  }
  const int64_t n = source.size(), batches = (n + o.batch_size - 1) / o.batch_size;
  const int64_t robust_radius = static_cast<int64_t>(radii), robust_code = static_cast<int64_t>(m);
  if (!work.empty()) fs::create_directories(work / "curve");

  res.images = n;
  res.ensemble = o.version();
  for (size_t k = 0; k < radii; ++k) {
    RobustCurvePoint p;
    p.eps = eps[k];
    for (const auto& name : names) {
      RobustStage s;
      s.attack = attack_info(name).name;
      s.label = attack_info(name).label;
      p.stages.push_back(s);
    }
    curve.points.push_back(p);
  }
  res.stages = curve.points.front().stages;
  std::vector<torch::Tensor> preds, fooled_by, fooled_at, labels;
  auto t_start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t start = b * o.batch_size, count = std::min(o.batch_size, n - start);
    const fs::path file = work.empty() ? fs::path() : work / "curve" / fmt::format("{:06d}.json", b);
    auto [x, y] = source.read_float(start, count);
    labels.push_back(y.to(torch::kInt64).cpu());
    CurveBatch out;
    if (!file.empty() && fs::exists(file)) {
      out = CurveBatch::from_json(nlohmann::json::parse(read_file(file)), radii, m);
    } else {
      x = x.to(o.device);
      y = y.to(o.device).to(torch::kInt64);
      const torch::Tensor ids = torch::arange(o.first_index + start, o.first_index + start + count, torch::kInt64).to(o.device);
      out.clean_pred = predict(model, x).cpu();
      const torch::Tensor wrong = out.clean_pred.ne(y.cpu());
      out.fooled_by = torch::full({count}, robust_code, torch::kInt64).masked_fill_(wrong, -1);
      out.fooled_at = torch::full({count}, robust_radius, torch::kInt64).masked_fill_(wrong, -1);
      for (size_t k = 0; k < radii; ++k) {
        out.stages.emplace_back(m);
        for (size_t a = 0; a < m; ++a) {
          torch::Tensor rows = out.fooled_at.eq(robust_radius).nonzero().squeeze(1);
          torch::Tensor hit = robust_detail::attack_rows(model, *attacks[k][a], x, y, ids, rows.to(o.device), &out.stages[k][a]);
          if (rows.size(0) == 0) continue;
          const torch::Tensor fell = rows.masked_select(hit);
          out.fooled_by.index_fill_(0, fell, static_cast<int64_t>(a));
          out.fooled_at.index_fill_(0, fell, static_cast<int64_t>(k));
        }
      }
      if (!file.empty()) write_file_atomic(file, out.to_json().dump());
    }
    for (size_t k = 0; k < radii; ++k) {
      for (size_t a = 0; a < m; ++a) {
        add_stage(curve.points[k].stages[a], out.stages[k][a]);
        add_stage(res.stages[a], out.stages[k][a]);
        curve.points[k].seconds += out.stages[k][a].seconds;
      }
    }
    preds.push_back(out.clean_pred);
    fooled_by.push_back(out.fooled_by);
    fooled_at.push_back(out.fooled_at);
    if (o.progress) spdlog::info("robust curve: {}/{} images, {:.0f} s", start + count, n, seconds_since(t_start));
  }
  const torch::Tensor none = torch::zeros({0}, torch::kInt64);
  res.index = torch::arange(o.first_index, o.first_index + n, torch::kInt64);
  res.label = n ? torch::cat(labels) : none;
  res.clean_pred = n ? torch::cat(preds) : none;
  res.fooled_by = n ? torch::cat(fooled_by) : none;
  curve.fooled_at = n ? torch::cat(fooled_at) : none;
  res.clean_correct = res.fooled_by.ge(0).sum().item<int64_t>();
  res.robust = curve.fooled_at.eq(robust_radius).sum().item<int64_t>();
  for (size_t k = 0; k < radii; ++k) {
    curve.points[k].robust = curve.fooled_at.gt(static_cast<int64_t>(k)).sum().item<int64_t>();
  }

  // The checks at the largest radius, judged on that radius's stages.
  RobustResult last = res;
  last.stages = curve.points.back().stages;
  // The more-steps check compares what the first attack at full strength left robust among the
  // first images with a run of a fifth of its steps. The curve ran the first attack at the largest
  // radius only on the images robust at the radius before, so it is run here on the others too:
  // the check then sees what a single run at that radius would (each image's draws are its own).
  const int64_t check_n = std::min(o.check_count, n);
  if (radii > 1 && check_n > 0 && attack_info(names.front()).family != AttackFamily::ScoreBased &&
      (work.empty() || !fs::exists(work / "checks.json"))) {
    auto [x, y] = source.read_float(0, check_n);
    x = x.to(o.device);
    y = y.to(o.device).to(torch::kInt64);
    const torch::Tensor ids = torch::arange(o.first_index, o.first_index + check_n, torch::kInt64).to(o.device);
    const torch::Tensor rows = last.fooled_by.narrow(0, 0, check_n).ge(0).nonzero().squeeze(1);
    const torch::Tensor hit = robust_detail::attack_rows(model, *attacks.back().front(), x, y, ids, rows.to(o.device), nullptr);
    last.fooled_by = last.fooled_by.clone();
    last.fooled_by.index_fill_(0, rows, robust_code);
    last.fooled_by.index_fill_(0, rows.masked_select(hit), 0);
  }
  robust_detail::add_masking_checks(model, source, o, names, last, work.empty() ? fs::path() : work / "checks.json");
  for (auto& c : model_checks) last.checks.push_back(std::move(c));
  res.checks = last.checks;
  res.notes = last.notes;
  return curve;
}

}  // namespace sdsgsm
