// Per-sample minimal eps by bisection (include/sdsgsm/min_eps.hpp).
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "sdsgsm/min_eps.hpp"
#include "sdsgsm/options.hpp"

namespace sdsgsm {
namespace {

/// Runs make(eps) on the images `rows` of data, in batches; returns success per row.
torch::Tensor fooled(Classifier& model, const Dataset& data, const std::vector<int64_t>& rows, double eps,
                     const std::function<std::unique_ptr<Attack>(double)>& make, const MinEpsOptions& o) {
  auto attack = make(eps);
  auto idx = torch::tensor(rows, torch::kInt64);
  auto out = torch::zeros({static_cast<int64_t>(rows.size())}, torch::kBool);
  for (int64_t start = 0; start < idx.size(0); start += o.batch_size) {
    const int64_t n = std::min(o.batch_size, idx.size(0) - start);
    auto sel = idx.slice(0, start, start + n);
    auto x = data.images.index_select(0, sel).to(torch::kFloat32).div(255).to(o.device);
    auto y = data.labels.index_select(0, sel).to(o.device);
    auto r = attack->run(model, x, y, (sel + o.first_index).to(o.device));
    out.slice(0, start, start + n).copy_(r.success.to(torch::kCPU));
  }
  return out;
}

}  // namespace

torch::Tensor minimal_eps(Classifier& model, const Dataset& data,
                          const std::function<std::unique_ptr<Attack>(double)>& make, const MinEpsOptions& o) {
  static const OptionSet<MinEpsOptions> checks(
      "min-eps", {
                     option("eps", &MinEpsOptions::eps_max, "The largest eps tried").in_range(0, 1, RangeEnds::LeftOpen),
                     option("min-eps-rounds", &MinEpsOptions::rounds, "Bisection rounds").in_range(1, 20),
                 });
  checks.validate(o);
  check_batch_size(o.batch_size);
  const int64_t n = data.size();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> lo(n, 0.0), hi(n, inf);
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  // Images misclassified as they are need no budget.
  torch::Tensor clean_pred;
  {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> preds;
    for (int64_t s = 0; s < n; s += o.batch_size) {
      preds.push_back(model.forward(data.float_images(s, std::min(o.batch_size, n - s)).to(o.device)).argmax(1).to(torch::kCPU));
    }
    clean_pred = n > 0 ? torch::cat(preds) : torch::empty({0}, torch::kInt64);
  }
  std::vector<int64_t> open;
  auto wrong = clean_pred.ne(data.labels);
  for (int64_t i = 0; i < n; ++i) {
    if (wrong[i].item<bool>()) {
      hi[i] = 0;
    } else {
      open.push_back(i);
    }
  }
  if (!open.empty()) {
    auto ok = fooled(model, data, open, o.eps_max, make, o);
    std::vector<int64_t> next;
    for (size_t k = 0; k < open.size(); ++k) {
      if (ok[k].item<bool>()) {
        hi[open[k]] = o.eps_max;
        next.push_back(open[k]);
      }
    }
    open = next;
  }
  for (int round = 0; round < o.rounds && !open.empty(); ++round) {
    // Midpoints are dyadic fractions of eps_max: images that share one are attacked together.
    std::map<double, std::vector<int64_t>> groups;
    for (int64_t i : open) groups[(lo[i] + hi[i]) / 2].push_back(i);
    for (const auto& [mid, rows] : groups) {
      auto ok = fooled(model, data, rows, mid, make, o);
      for (size_t k = 0; k < rows.size(); ++k) (ok[k].item<bool>() ? hi : lo)[rows[k]] = mid;
    }
  }
  return torch::tensor(hi, torch::kFloat64);
}

std::string min_eps_csv(const torch::Tensor& index, const torch::Tensor& label, const torch::Tensor& min_eps) {
  std::string out = "index,label,min_eps\n";
  auto e = min_eps.to(torch::kFloat64).contiguous();
  for (int64_t i = 0; i < e.size(0); ++i) {
    const double v = e[i].item<double>();
    out += fmt::format("{},{},{}\n", index[i].item<int64_t>(), label[i].item<int64_t>(),
                       std::isinf(v) ? std::string("inf") : fmt::format("{:.9g}", v));
  }
  return out;
}

nlohmann::json min_eps_summary(const torch::Tensor& min_eps, const torch::Tensor& correct, const MinEpsOptions& o) {
  auto e = min_eps.to(torch::kFloat64).masked_select(correct.to(torch::kBool));
  auto finite = e.masked_select(torch::isfinite(e));
  nlohmann::json j = {{"images", e.size(0)},
                      {"fooled_within_eps_max", e.size(0) ? static_cast<double>(finite.size(0)) / e.size(0) : 0.0},
                      {"eps_max", o.eps_max},
                      {"rounds", o.rounds},
                      {"resolution", o.eps_max / std::pow(2.0, o.rounds)}};
  if (finite.size(0) > 0) {
    // The lower median, as torch defines it; in 1/255 units too, as eps is usually read.
    const double median = finite.median().item<double>(), mean = finite.mean().item<double>();
    j["median"] = median;
    j["mean"] = mean;
    j["median_255"] = median * 255;
    j["mean_255"] = mean * 255;
  } else {
    j["median"] = nullptr;
    j["mean"] = nullptr;
  }
  return j;
}

}  // namespace sdsgsm
