#include "sdsgsm/curves.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace sdsgsm {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The per-sample columns of one basis, as contiguous float64 / bool vectors.
struct Columns {
  std::vector<double> l2, ssim;
  std::vector<bool> fooled;  ///< counted && success
  int64_t counted = 0;
};

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

Columns columns_of(const AttackRunResult& r, Basis basis) {
  Columns c;
  const int64_t n = r.size();
  if (n == 0) return c;
  const bool q = basis == Basis::Rounded8bit;
  auto counted = counted_samples(r);
  auto fooled = counted.logical_and(q ? r.success_8bit : r.success);
  c.counted = counted.sum().item<int64_t>();
  c.l2 = to_vector(q ? r.l2_8bit : r.l2);
  c.ssim = to_vector(q ? r.ssim_8bit : r.ssim);
  auto f = fooled.to(torch::kUInt8).contiguous();
  c.fooled.assign(f.data_ptr<uint8_t>(), f.data_ptr<uint8_t>() + n);
  return c;
}

/// The smallest number with two significant digits that is >= x (x > 0).
double ceil_two_digits(double x) {
  const double p = std::pow(10.0, std::floor(std::log10(x)) - 1);
  double v = std::ceil(x / p) * p;
  if (v < x) v += p;  // x / p rounded down by one ulp
  return v;
}

std::vector<double> even_steps(double from, double to, int points) {
  std::vector<double> x(points);
  for (int i = 0; i < points; ++i) x[i] = from + (to - from) * i / (points - 1);
  x.back() = to;
  return x;
}

/// An index in [0, n) from mt19937_64 without modulo bias; the same on every platform (unlike
/// std::uniform_int_distribution, whose algorithm the standard leaves open).
uint64_t draw_index(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = (std::numeric_limits<uint64_t>::max() / n) * n;
  uint64_t v;
  do v = rng();
  while (v >= limit);
  return v % n;
}

/// The q-quantile of sorted values, interpolated linearly between order statistics.
double quantile(const std::vector<double>& sorted, double q) {
  const double h = (sorted.size() - 1) * q;
  const auto lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

std::string csv_number(double v) { return std::isnan(v) ? "" : fmt::format("{:.6g}", v); }

/// A CSV field, quoted when it holds a comma, a quote or a line break (attack labels are free text).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }
double number_from(const nlohmann::json& j) { return j.is_null() ? kNaN : j.get<double>(); }

}  // namespace

std::string basis_name(Basis b) { return b == Basis::Float ? "float" : "8bit"; }

torch::Tensor counted_samples(const AttackRunResult& r) {
  auto ok = r.clean_pred.eq(r.label);
  return r.targeted() ? ok.logical_and(r.target.ne(r.label)) : ok;
}

CurveGrid default_grid(const std::vector<const AttackRunResult*>& runs, int points) {
  if (points < 2) throw Error(fmt::format("a curve needs at least 2 points (got {})", points));
  double top = 0;
  for (const auto* r : runs) {
    for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
      Columns c = columns_of(*r, b);
      for (size_t i = 0; i < c.fooled.size(); ++i) {
        if (c.fooled[i] && std::isfinite(c.l2[i])) top = std::max(top, c.l2[i]);
      }
    }
  }
  CurveGrid g;
  g.l2_budgets = even_steps(0, top > 0 ? ceil_two_digits(top) : 1.0, points);
  g.ssim_floors = even_steps(0.9, 1.0, points);
  return g;
}

std::vector<double> asr_within_l2(const AttackRunResult& r, const std::vector<double>& budgets, Basis basis) {
  Columns c = columns_of(r, basis);
  std::vector<double> asr;
  for (double b : budgets) {
    int64_t k = 0;
    for (size_t i = 0; i < c.fooled.size(); ++i) k += c.fooled[i] && c.l2[i] <= b;
    asr.push_back(c.counted ? static_cast<double>(k) / c.counted : 0.0);
  }
  return asr;
}

std::vector<double> asr_above_ssim(const AttackRunResult& r, const std::vector<double>& floors, Basis basis) {
  Columns c = columns_of(r, basis);
  std::vector<double> asr;
  for (double f : floors) {
    int64_t k = 0;
    for (size_t i = 0; i < c.fooled.size(); ++i) k += c.fooled[i] && c.ssim[i] >= f;
    asr.push_back(c.counted ? static_cast<double>(k) / c.counted : 0.0);
  }
  return asr;
}

std::vector<Curve> attack_curves(const std::string& label, const AttackRunResult& r, const CurveGrid& grid) {
  std::vector<Curve> out;
  for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
    out.push_back({label, "l2_budget", basis_name(b), grid.l2_budgets, asr_within_l2(r, grid.l2_budgets, b)});
    out.push_back({label, "ssim_floor", basis_name(b), grid.ssim_floors, asr_above_ssim(r, grid.ssim_floors, b)});
  }
  return out;
}

std::vector<Curve> eps_curves(const EpsCurve& e) {
  if (e.asr.size() != e.eps.size() || e.asr_8bit.size() != e.eps.size()) {
    throw Error(fmt::format("the eps curve of '{}' has {} eps but {} and {} ASR values", e.attack, e.eps.size(),
                            e.asr.size(), e.asr_8bit.size()));
  }
  return {{e.attack, "eps", "float", e.eps, e.asr}, {e.attack, "eps", "8bit", e.eps, e.asr_8bit}};
}

PairedStats paired_l2(const std::string& a_label, const AttackRunResult& a, const std::string& b_label,
                      const AttackRunResult& b, Basis basis, const BootstrapOptions& o) {
  if (o.resamples < 1) throw Error(fmt::format("the bootstrap needs at least 1 resample (got {})", o.resamples));
  if (!(o.level > 0 && o.level < 1)) throw Error(fmt::format("the interval level must be in (0,1) (got {})", o.level));
  if (a.size() != b.size() || (a.size() > 0 && !a.index.equal(b.index))) {
    throw Error(fmt::format("cannot pair '{}' and '{}': they were not run on the same images", a_label, b_label));
  }
  PairedStats s;
  s.a = a_label;
  s.b = b_label;
  s.basis = basis_name(basis);
  s.resamples = o.resamples;
  s.level = o.level;
  s.seed = o.seed;
  Columns ca = columns_of(a, basis), cb = columns_of(b, basis);
  std::vector<double> diff;
  double sum_a = 0, sum_b = 0;
  int64_t a_less = 0, b_less = 0, same = 0;
  for (size_t i = 0; i < ca.fooled.size(); ++i) {
    if (!ca.fooled[i] || !cb.fooled[i]) continue;
    diff.push_back(ca.l2[i] - cb.l2[i]);
    sum_a += ca.l2[i];
    sum_b += cb.l2[i];
    a_less += ca.l2[i] < cb.l2[i];
    b_less += cb.l2[i] < ca.l2[i];
    same += ca.l2[i] == cb.l2[i];
  }
  s.n = static_cast<int64_t>(diff.size());
  if (s.n == 0) {
    s.mean_diff = s.ci_low = s.ci_high = s.mean_a = s.mean_b = kNaN;
    return s;
  }
  const double n = static_cast<double>(s.n);
  s.mean_a = sum_a / n;
  s.mean_b = sum_b / n;
  double total = 0;
  for (double d : diff) total += d;
  s.mean_diff = total / n;
  s.a_smaller = a_less / n;
  s.b_smaller = b_less / n;
  s.ties = same / n;
  std::mt19937_64 rng(o.seed);
  std::vector<double> means(o.resamples);
  for (auto& m : means) {
    double t = 0;
    for (int64_t i = 0; i < s.n; ++i) t += diff[draw_index(rng, s.n)];
    m = t / n;
  }
  std::sort(means.begin(), means.end());
  s.ci_low = quantile(means, (1 - o.level) / 2);
  s.ci_high = quantile(means, 1 - (1 - o.level) / 2);
  return s;
}

std::vector<PairedStats> all_pairs(const std::vector<std::string>& labels,
                                   const std::vector<const AttackRunResult*>& runs, const BootstrapOptions& o) {
  if (labels.size() != runs.size()) throw Error("internal: one label per run");
  std::vector<PairedStats> out;
  for (Basis b : {Basis::Float, Basis::Rounded8bit}) {
    for (size_t i = 0; i < runs.size(); ++i) {
      for (size_t j = i + 1; j < runs.size(); ++j)
        out.push_back(paired_l2(labels[i], *runs[i], labels[j], *runs[j], b, o));
    }
  }
  return out;
}

std::string curves_csv(const std::vector<Curve>& curves) {
  std::string out = "attack,curve,basis,x,asr\n";
  for (const auto& c : curves) {
    for (size_t i = 0; i < c.x.size(); ++i) {
      out += fmt::format("{},{},{},{},{}\n", csv_field(c.attack), c.curve, c.basis, csv_number(c.x[i]),
                         csv_number(c.asr[i]));
    }
  }
  return out;
}

nlohmann::json curves_json(const std::vector<Curve>& curves) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : curves) {
    j.push_back({{"attack", c.attack}, {"curve", c.curve}, {"basis", c.basis}, {"x", c.x}, {"asr", c.asr}});
  }
  return j;
}

std::vector<Curve> curves_from_json(const nlohmann::json& j) {
  std::vector<Curve> out;
  try {
    for (const auto& e : j) {
      Curve c{e.at("attack").get<std::string>(), e.at("curve").get<std::string>(), e.at("basis").get<std::string>(),
              e.at("x").get<std::vector<double>>(), e.at("asr").get<std::vector<double>>()};
      if (c.x.size() != c.asr.size()) throw Error("x and asr differ in length");
      out.push_back(std::move(c));
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("curves.json is not a list of curves: {}", e.what()));
  }
  return out;
}

std::string paired_csv(const std::vector<PairedStats>& stats) {
  std::string out =
      "a,b,basis,n,mean_a,mean_b,mean_diff,ci_low,ci_high,a_smaller,b_smaller,ties,resamples,level,seed\n";
  for (const auto& s : stats) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(s.a), csv_field(s.b), s.basis, s.n,
                       csv_number(s.mean_a), csv_number(s.mean_b), csv_number(s.mean_diff), csv_number(s.ci_low),
                       csv_number(s.ci_high), csv_number(s.a_smaller), csv_number(s.b_smaller), csv_number(s.ties),
                       s.resamples, csv_number(s.level), s.seed);
  }
  return out;
}

nlohmann::json paired_json(const std::vector<PairedStats>& stats) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : stats) {
    j.push_back({{"a", s.a},
                 {"b", s.b},
                 {"basis", s.basis},
                 {"n", s.n},
                 {"mean_a", number_or_null(s.mean_a)},
                 {"mean_b", number_or_null(s.mean_b)},
                 {"mean_diff", number_or_null(s.mean_diff)},
                 {"ci_low", number_or_null(s.ci_low)},
                 {"ci_high", number_or_null(s.ci_high)},
                 {"a_smaller", s.a_smaller},
                 {"b_smaller", s.b_smaller},
                 {"ties", s.ties},
                 {"resamples", s.resamples},
                 {"level", s.level},
                 {"seed", s.seed}});
  }
  return j;
}

std::vector<PairedStats> paired_from_json(const nlohmann::json& j) {
  std::vector<PairedStats> out;
  try {
    for (const auto& e : j) {
      PairedStats s;
      s.a = e.at("a").get<std::string>();
      s.b = e.at("b").get<std::string>();
      s.basis = e.at("basis").get<std::string>();
      s.n = e.at("n").get<int64_t>();
      s.mean_a = number_from(e.at("mean_a"));
      s.mean_b = number_from(e.at("mean_b"));
      s.mean_diff = number_from(e.at("mean_diff"));
      s.ci_low = number_from(e.at("ci_low"));
      s.ci_high = number_from(e.at("ci_high"));
      s.a_smaller = e.at("a_smaller").get<double>();
      s.b_smaller = e.at("b_smaller").get<double>();
      s.ties = e.at("ties").get<double>();
      s.resamples = e.at("resamples").get<int>();
      s.level = e.at("level").get<double>();
      s.seed = e.at("seed").get<uint64_t>();
      out.push_back(std::move(s));
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("paired.json is not a list of paired statistics: {}", e.what()));
  }
  return out;
}

std::string paired_markdown(const std::vector<PairedStats>& stats) {
  std::string out =
      "| a | b | basis | images both fool | l2 a | l2 b | l2 a - b (95% CI) | a smaller | b smaller | ties |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : stats) {
    if (s.n == 0) {
      out += fmt::format("| {} | {} | {} | 0 | - | - | - | - | - | - |\n", s.a, s.b, s.basis);
      continue;
    }
    out += fmt::format(
        "| {} | {} | {} | {} | {:.3f} | {:.3f} | {:+.3f} [{:+.3f}, {:+.3f}] | {:.1f}% | {:.1f}% | {:.1f}% |\n", s.a,
        s.b, s.basis, s.n, s.mean_a, s.mean_b, s.mean_diff, s.ci_low, s.ci_high, 100 * s.a_smaller, 100 * s.b_smaller,
        100 * s.ties);
  }
  return out;
}

void write_curves_and_pairs(const fs::path& dir, const std::vector<Curve>& curves,
                            const std::vector<PairedStats>& pairs) {
  write_file_atomic(dir / "curves.csv", curves_csv(curves));
  write_file_atomic(dir / "curves.json", curves_json(curves).dump(2) + "\n");
  write_file_atomic(dir / "paired.csv", paired_csv(pairs));
  write_file_atomic(dir / "paired.json", paired_json(pairs).dump(2) + "\n");
}

std::string write_comparison_figures(const fs::path& dir, const std::vector<std::string>& labels,
                                     const std::vector<const AttackRunResult*>& runs, const std::vector<EpsCurve>& eps,
                                     const BootstrapOptions& options) {
  if (labels.size() != runs.size()) throw Error("internal: one label per run");
  const CurveGrid grid = default_grid(runs);
  std::vector<Curve> curves;
  for (size_t i = 0; i < runs.size(); ++i) {
    for (auto& c : attack_curves(labels[i], *runs[i], grid)) curves.push_back(std::move(c));
  }
  for (const auto& e : eps) {
    for (auto& c : eps_curves(e)) curves.push_back(std::move(c));
  }
  auto pairs = all_pairs(labels, runs, options);
  write_curves_and_pairs(dir, curves, pairs);
  return paired_markdown(pairs);
}

}  // namespace sdsgsm
