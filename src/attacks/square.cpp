// Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
// black-box adversarial attack via random search", ECCV 2020), in l_inf (the default), l2 (--norm 2)
// and l1 (--norm 1, the l1 version of AutoAttack's code). Gradient-free: it reads only the model's
// logits, so a model that hides its gradients (gradient masking) does not stop it; this is why
// AutoAttack, and `sdsgsm robust`, end with it.
// Random search; a candidate is kept if the margin loss z_y - max_{i != y} z_i (targeted: the
// target's margin, attack_margin) went down.
// l_inf, on the vertices of the ball:
//   start  x_0 = clip(x + eps * v), v = +-1 per channel and image column (vertical stripes)
//   step   pick a square window of side s at a random place; give it, per channel, a random +-eps.
//   The side s = round(sqrt(p H W)), at least 1 and below the image's shorter side (so a window
//   fits a portrait or landscape image; 1 on a 1-pixel-high or -wide image).
// l2, on the sphere of radius eps:
//   start  tiles of side t = max(min(H, W) / 5, 1), centred, each per channel a random sign times
//          the pattern eta(t) below; the whole scaled to l2 norm eps: x_0 = clip(x + eps d / ||d||)
//   step   two windows W1, W2 of side s (their places drawn apart; W1 wins where they overlap).
//          Per channel, the l2 mass of d on W1 and W2 together, plus an equal share of what the
//          image lacks of eps, m = sqrt(max(eps^2 - ||d||^2, 0) / C + ||d_{W1 u W2}||^2), goes to W1:
//          d_W1 = m u / ||u||, u = +-eta(s) + d_W1 / ||d_W1||; d_W2 = 0; x' = clip(x + eps d / ||d||).
//   eta(s): the upper s/2 rows +, the lower rows -, each half concentric rings around its centre
//   (ring k weighted 1 / (k + 1)^2, summed over the rings that cover a point), unit l2 norm,
//   transposed with probability 1/2. s = round(sqrt(p H W)), at least 3, odd, at most the
//   image's shorter side.
// l1, in the l1 ball of radius eps: as l2 with every norm an l1 norm, rings weighted 1 / (k + 1)^4,
//   and in place of the sphere the projection P onto {||d||_1 <= eps (1 - 1e-6)} within [0,1]:
//   start  x_0 = P(x + d) (d the tiles, each +-eta(t) of unit l1 norm per channel)
//   step   d_W1 = m u / ||u||_1 with m = C (max(eps - ||d||_1, 0) / C + ||d_{W1 u W2}||_1) per channel,
//          d_W2 = 0, x' = P(x + d), as AutoAttack's l1 Square computes it (its factor C included).
// p starts at 0.8 (every norm, as AutoAttack's standard version runs them) and halves after
// query 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of
//   --square-schedule autoattack  the queries as counted (AutoAttack's standard version, its
//                                 resc_schedule=False: with 5000 queries the windows stop shrinking
//                                 at query 4000, 3 px on 32x32 in l_inf); past 10,000 queries p
//                                 stays at its last value (the reference resets it to 0.8 there)
//   --square-schedule stretched   the same fractions of --steps (the 10,000-query schedule stretched
//                                 over the budget, the reference's resc_schedule=True: with 5000
//                                 queries, 2 px on 32x32 from query 3000, 1 px from 4000, in l_inf)
// --steps counts the model queries per image, the start's included; a sample stops at its first
// success. Images the model already misclassifies are not attacked. Unlike the reference
// implementation, a candidate that happens to equal the current point is not redrawn (at most 1/8
// of the late, 1-pixel l_inf steps of a 3-channel image), and each sample draws its own windows
// (the reference draws one place per step for the whole batch).
// Per-sample randomness comes from a generator seeded by (seed, sample id), so no sample's result
// depends on its batch.
// Defaults: 5000 queries (the registry's; AutoAttack's standard version), p = 0.8, l_inf, the
// stretched schedule (`sdsgsm robust`'s standard ensemble runs the autoattack one).
// Options used: eps, steps, norm, seed, targeted, square_schedule.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "attack_common.hpp"

namespace sdsgsm {

const char kSquare[] = "square";

namespace {

constexpr double kInitialShare = 0.8;  ///< p at the start
constexpr const char* kScheduleStretched = "stretched";

/// The share p of the image a window covers after `query` of `total` queries (`stretched`: the
/// 10,000-query schedule's fractions of `total`; otherwise the queries as counted).
double window_share(int64_t query, int64_t total, bool stretched) {
  const int64_t at =
      stretched ? static_cast<int64_t>(static_cast<double>(query) / static_cast<double>(total) * 10000) : query;
  static constexpr int64_t kBounds[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = kInitialShare;
  for (int64_t b : kBounds) {
    if (at > b) p /= 2;
  }
  return p;
}

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

float coin(std::mt19937_64& g) { return (g() >> 63) ? 1.0f : -1.0f; }

/// A place for a window of `side` on an axis of `length` (side <= length): 0 ... length - side.
int64_t place(std::mt19937_64& g, int64_t length, int64_t side) {
  return static_cast<int64_t>(g() % static_cast<uint64_t>(length - side + 1));
}

/// Concentric rings around the centre of an r x q rectangle (row-major): a point at ring distance
/// max(|i - r/2|, |j - q/2|) = d gets sum_{k = d}^{n - 1} 1 / (k + 1)^power, n = max(r/2, q/2) + 1.
std::vector<double> rings(int64_t r, int64_t q, int power) {
  std::vector<double> out(static_cast<size_t>(r * q), 0.0);
  const int64_t n = std::max(r / 2, q / 2) + 1;
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < q; ++j) {
      for (int64_t k = std::max(std::abs(i - r / 2), std::abs(j - q / 2)); k < n; ++k) {
        out[static_cast<size_t>(i * q + j)] += 1.0 / std::pow(static_cast<double>(k + 1), power);
      }
    }
  }
  return out;
}

/// eta(s), s x s row-major: the upper s/2 rows rings(s/2, s), the lower rows -rings(s - s/2, s),
/// each half and the whole at unit norm; l2: rings of power 2, l2 norm; l1: power 4, l1 norm.
std::vector<float> eta_pattern(int64_t s, bool l1) {
  auto unit = [l1](std::vector<double> v) {
    double n = 0;
    for (double e : v) n += l1 ? std::abs(e) : e * e;
    if (!l1) n = std::sqrt(n);
    for (double& e : v) e = n > 0 ? e / n : 0;
    return v;
  };
  const int power = l1 ? 4 : 2;
  std::vector<double> top = unit(rings(s / 2, s, power)), bottom = unit(rings(s - s / 2, s, power));
  for (double& e : bottom) e = -e;
  top.insert(top.end(), bottom.begin(), bottom.end());
  top = unit(top);
  return std::vector<float>(top.begin(), top.end());
}

/// Adds sign * eta (transposed when asked) to the s x s window at (top, left) of plane `out` (h x w).
template <typename Accessor>
void put_eta(Accessor out, const std::vector<float>& eta, int64_t s, int64_t top, int64_t left, bool transposed,
             float sign) {
  for (int64_t r = 0; r < s; ++r) {
    for (int64_t col = 0; col < s; ++col) {
      out[top + r][left + col] += sign * eta[static_cast<size_t>(transposed ? col * s + r : r * s + col)];
    }
  }
}

torch::Tensor per_image(const torch::Tensor& v) { return v.view({-1, 1, 1, 1}); }

/// eps d / ||d||_2 per image (the reference's 1e-12 guards a zero d).
torch::Tensor onto_sphere(const torch::Tensor& d, double eps) {
  return eps * d / per_image(d.flatten(1).norm(2, 1) + 1e-12);
}

class Square final : public Attack {
 public:
  Square(AttackOptions options) : Attack(kSquare, std::move(options)) {
    options_.validate();
    if (options_.restarts != 1) throw Error("--restarts: square does not restart");
    if (options_.early_stop_8bit) throw Error("--early-stop-8bit: square checks no 8-bit adversarial");
  }

  nlohmann::json config() const override {
    nlohmann::json j = options_.to_json();
    j.erase("early_stop");
    j.erase("random_start");
    j["attack"] = name_;
    j["norm"] = to_string(norm());
    j["queries"] = options_.steps;
    j["initial_share"] = kInitialShare;
    j["gradient_free"] = true;
    j["schedule"] = options_.square_schedule;
    return j;
  }

 protected:
  Norm norm() const { return options_.norm.value_or(Norm::Linf); }
  double refine_bound() const override { return norm() == Norm::Linf ? options_.eps : -1; }

  /// What both norms share: the samples attacked, their generators, the margin of a candidate.
  struct Search {
    AttackContext& c;
    torch::Tensor rows, x0, goal;
    std::vector<std::mt19937_64> gens;
    torch::Tensor margin_of(const torch::Tensor& images, const torch::Tensor& local) {
      c.count_forward(rows.index_select(0, local));
      return attack_margin(c.model.forward(images), goal.index_select(0, local), c.targeted);
    }
    void count_queries(const torch::Tensor& local) {
      c.r.iterations.index_add_(0, rows.index_select(0, local), torch::ones({local.size(0)}, c.r.iterations.options()));
    }
  };

  void attack(AttackContext& c) const override {
    c.r.adversarial = c.x.clone();
    torch::Tensor rows = c.succeeded(c.r.clean_pred).logical_not().nonzero().squeeze(1);
    const int64_t m = rows.size(0);
    if (m == 0) return;
    Search s{c, rows, c.x.index_select(0, rows), c.goal().index_select(0, rows), {}};
    const torch::Tensor ids = c.ids_cpu.index_select(0, rows.cpu());
    for (int64_t i = 0; i < m; ++i) {
      s.gens.emplace_back(mix(mix(options_.seed) ^ static_cast<uint64_t>(ids.data_ptr<int64_t>()[i])));
    }
    torch::NoGradGuard ng;
    torch::Tensor current = norm() == Norm::Linf ? start_linf(s) : start_ball(s);
    torch::Tensor all = torch::arange(m, rows.options());
    torch::Tensor margin = s.margin_of(current, all);
    s.count_queries(all);
    const bool stretched = options_.square_schedule == kScheduleStretched;
    for (int64_t q = 1; q < options_.steps; ++q) {
      torch::Tensor active = margin.ge(0).nonzero().squeeze(1);  // not fooled yet
      if (active.size(0) == 0) break;
      const double p = window_share(q, options_.steps, stretched);
      const torch::Tensor cur = current.index_select(0, active);
      torch::Tensor candidate = norm() == Norm::Linf ? step_linf(s, active, cur, p) : step_ball(s, active, cur, p);
      torch::Tensor cand_margin = s.margin_of(candidate, active);
      s.count_queries(active);
      torch::Tensor better = cand_margin.lt(margin.index_select(0, active));
      current.index_copy_(0, active, torch::where(better.view({-1, 1, 1, 1}), candidate, cur));
      margin.index_copy_(0, active, torch::where(better, cand_margin, margin.index_select(0, active)));
    }
    c.r.adversarial.index_copy_(0, rows, current);
  }

 private:
  /// l_inf's start: vertical stripes of +-eps.
  torch::Tensor start_linf(Search& s) const {
    const int64_t m = s.x0.size(0), channels = s.x0.size(1), w = s.x0.size(3);
    torch::Tensor stripes = torch::empty({m, channels, 1, w}, torch::kFloat32);
    auto st = stripes.accessor<float, 4>();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t ch = 0; ch < channels; ++ch) {
        for (int64_t col = 0; col < w; ++col) st[i][ch][0][col] = coin(s.gens[i]);
      }
    }
    return (s.x0 + options_.eps * stripes.to(s.x0.device())).clamp(0.0, 1.0);
  }

  /// l_inf's candidate: one window at +-eps per channel, the rest of the current perturbation kept.
  torch::Tensor step_linf(Search& s, const torch::Tensor& active, const torch::Tensor& cur, double p) const {
    const int64_t a = active.size(0), channels = cur.size(1), h = cur.size(2), w = cur.size(3);
    const int64_t side = std::min<int64_t>(std::max<int64_t>(std::llround(std::sqrt(p * static_cast<double>(h * w))), 1),
                                           std::max<int64_t>(std::min(h, w) - 1, 1));
    torch::Tensor mask = torch::zeros({a, 1, h, w}, torch::kBool);
    torch::Tensor signs = torch::empty({a, channels, 1, 1}, torch::kFloat32);
    auto mk = mask.accessor<bool, 4>();
    auto sg = signs.accessor<float, 4>();
    const torch::Tensor act_cpu = active.cpu();
    const auto* act = act_cpu.data_ptr<int64_t>();
    for (int64_t i = 0; i < a; ++i) {
      std::mt19937_64& g = s.gens[act[i]];
      const int64_t top = place(g, h, side), left = place(g, w, side);
      for (int64_t ch = 0; ch < channels; ++ch) sg[i][ch][0][0] = coin(g);
      for (int64_t r = top; r < top + side; ++r) {
        for (int64_t col = left; col < left + side; ++col) mk[i][0][r][col] = true;
      }
    }
    const torch::Tensor base = s.x0.index_select(0, active);
    torch::Tensor delta = torch::where(mask.to(base.device()), options_.eps * signs.to(base.device()), cur - base);
    return (base + delta).clamp(0.0, 1.0);
  }

  /// Where l2 puts d on the sphere of radius eps (clipped to the box), l1 projects x0 + d onto
  /// the l1 ball of radius eps (1 - 1e-6) within the box, as AutoAttack's l1 Square does.
  torch::Tensor onto_ball(const torch::Tensor& base, const torch::Tensor& d) const {
    if (norm() == Norm::L1) return detail::project_l1_box(base + d, base, options_.eps * (1 - 1e-6));
    return (base + onto_sphere(d, options_.eps)).clamp(0.0, 1.0);
  }

  /// l2's and l1's start: centred tiles of side max(min(H, W) / 5, 1), each +-eta per channel, onto the ball.
  torch::Tensor start_ball(Search& s) const {
    const int64_t m = s.x0.size(0), channels = s.x0.size(1), h = s.x0.size(2), w = s.x0.size(3);
    const int64_t t = std::max<int64_t>(std::min(h, w) / 5, 1);
    const std::vector<float> eta = eta_pattern(t, norm() == Norm::L1);
    torch::Tensor d = torch::zeros({m, channels, h, w}, torch::kFloat32);
    auto acc = d.accessor<float, 4>();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t top = (h - t * (h / t)) / 2; top + t <= h; top += t) {
        for (int64_t left = (w - t * (w / t)) / 2; left + t <= w; left += t) {
          const bool transposed = coin(s.gens[i]) > 0;
          for (int64_t ch = 0; ch < channels; ++ch) put_eta(acc[i][ch], eta, t, top, left, transposed, coin(s.gens[i]));
        }
      }
    }
    return onto_ball(s.x0, d.to(s.x0.device()));
  }

  /// l2's and l1's candidate: the mass of two windows, per channel, moved into the first (see the header).
  torch::Tensor step_ball(Search& s, const torch::Tensor& active, const torch::Tensor& cur, double p) const {
    const bool l1 = norm() == Norm::L1;
    const int64_t a = active.size(0), channels = cur.size(1), h = cur.size(2), w = cur.size(3);
    int64_t side = std::max<int64_t>(std::llround(std::sqrt(p * static_cast<double>(h * w))), 3);
    if (side % 2 == 0) ++side;
    side = std::min(side, std::min(h, w));
    const std::vector<float> eta = eta_pattern(side, l1);
    torch::Tensor first = torch::zeros({a, 1, h, w}, torch::kFloat32), second = torch::zeros({a, 1, h, w}, torch::kFloat32);
    torch::Tensor pattern = torch::zeros({a, channels, h, w}, torch::kFloat32);
    auto f1 = first.accessor<float, 4>();
    auto f2 = second.accessor<float, 4>();
    auto pt = pattern.accessor<float, 4>();
    const torch::Tensor act_cpu = active.cpu();
    const auto* act = act_cpu.data_ptr<int64_t>();
    for (int64_t i = 0; i < a; ++i) {
      std::mt19937_64& g = s.gens[act[i]];
      const int64_t top = place(g, h, side), left = place(g, w, side);
      const int64_t top2 = place(g, h, side), left2 = place(g, w, side);
      const bool transposed = coin(g) > 0;
      for (int64_t ch = 0; ch < channels; ++ch) put_eta(pt[i][ch], eta, side, top, left, transposed, coin(g));
      for (int64_t r = 0; r < side; ++r) {
        for (int64_t col = 0; col < side; ++col) {
          f1[i][0][top + r][left + col] = 1;
          f2[i][0][top2 + r][left2 + col] = 1;
        }
      }
    }
    const torch::Tensor base = s.x0.index_select(0, active);
    const torch::Tensor m1 = first.to(base.device()), m2 = second.to(base.device());
    auto plane_norm = [l1](const torch::Tensor& v) {
      return l1 ? v.abs().sum({2, 3}, /*keepdim=*/true) : v.square().sum({2, 3}, /*keepdim=*/true).sqrt();
    };
    const double eps = options_.eps, c = static_cast<double>(channels);
    torch::Tensor d = cur - base;
    const torch::Tensor old = d * m1;
    const torch::Tensor image_norm = per_image(l1 ? d.flatten(1).abs().sum(1) : d.flatten(1).norm(2, 1));
    const torch::Tensor mass = plane_norm(d * torch::max(m1, m2));
    torch::Tensor fresh = pattern.to(base.device()) + old / (plane_norm(old) + 1e-12);
    const torch::Tensor size = l1 ? ((eps - image_norm).clamp_min(0) / c + mass) * c
                                  : ((eps * eps - image_norm.square()).clamp_min(0) / c + mass.square()).sqrt();
    fresh = fresh / (plane_norm(fresh) + 1e-12) * size;
    d = torch::where(m1.gt(0), fresh, torch::where(m2.gt(0), torch::zeros_like(d), d));
    return onto_ball(base, d);
  }
};

}  // namespace

std::unique_ptr<Attack> make_square(const AttackOptions& options) { return std::make_unique<Square>(options); }

}  // namespace sdsgsm
