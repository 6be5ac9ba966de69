// Square Attack, l_inf (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
// black-box adversarial attack via random search", ECCV 2020). Gradient-free: it reads only the
// model's logits, so a model that hides its gradients (gradient masking) does not stop it; this is
// why AutoAttack, and `sdsgsm robust`, end with it.
// Random search on the vertices of the l_inf ball:
//   start  x_0 = clip(x + eps * v), v = +-1 per channel and image column (vertical stripes)
//   step   pick a square window of side s at a random place; give it, per channel, a random
//          +-eps; keep the candidate if the margin loss z_y - max_{i != y} z_i (targeted: the
//          target's margin, attack_margin) went down.
// The side s = round(sqrt(p H W)), at least 1 and below the image's shorter side (so a window fits
// a portrait or landscape image; 1 on a 1-pixel-high or -wide image), shrinks with the query count:
// p starts at 0.8 and halves after query 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of
//   --square-schedule autoattack  the queries as counted (AutoAttack's standard version, its
//                                 resc_schedule=False: with 5000 queries the windows stop shrinking
//                                 at query 4000, 3 px on 32x32); past 10,000 queries p stays at its
//                                 last value (the reference resets it to 0.8 there)
//   --square-schedule stretched   the same fractions of --steps (the 10,000-query schedule stretched
//                                 over the budget, the reference's resc_schedule=True: with 5000
//                                 queries, 2 px on 32x32 from query 3000, 1 px from 4000)
// --steps counts the model queries per image, the start's included; a sample stops at its first
// success. Images the model already misclassifies are not attacked. Unlike the reference
// implementation, a candidate that happens to equal the current point is not redrawn (at most 1/8
// of the late, 1-pixel steps of a 3-channel image).
// Per-sample randomness comes from a generator seeded by (seed, sample id), so no sample's result
// depends on its batch.
// Defaults: 5000 queries (the registry's; AutoAttack's standard version), p = 0.8, the stretched
// schedule (`sdsgsm robust`'s standard ensemble runs the autoattack one).
// Options used: eps, steps, seed, targeted, square_schedule.
#include <cmath>
#include <random>

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

class Square final : public Attack {
 public:
  Square(AttackOptions options) : Attack(kSquare, std::move(options)) {
    options_.validate();
    if (options_.norm == Norm::L2) throw Error("--norm 2: square is the l_inf Square Attack");
    if (options_.restarts != 1) throw Error("--restarts: square does not restart");
    if (options_.early_stop_8bit) throw Error("--early-stop-8bit: square checks no 8-bit adversarial");
  }

  nlohmann::json config() const override {
    nlohmann::json j = options_.to_json();
    j.erase("early_stop");
    j.erase("random_start");
    j["attack"] = name_;
    j["queries"] = options_.steps;
    j["initial_share"] = kInitialShare;
    j["gradient_free"] = true;
    j["schedule"] = options_.square_schedule;
    return j;
  }

 protected:
  double refine_bound() const override { return options_.eps; }

  void attack(AttackContext& c) const override {
    const double eps = options_.eps;
    const int64_t h = c.x.size(2), w = c.x.size(3), channels = c.x.size(1), queries = options_.steps;
    const bool stretched = options_.square_schedule == kScheduleStretched;
    c.r.adversarial = c.x.clone();
    torch::Tensor rows = c.succeeded(c.r.clean_pred).logical_not().nonzero().squeeze(1);
    const int64_t m = rows.size(0);
    if (m == 0) return;
    const torch::Tensor x0 = c.x.index_select(0, rows);
    const torch::Tensor ids = c.ids_cpu.index_select(0, rows.cpu());
    std::vector<std::mt19937_64> gens;
    for (int64_t i = 0; i < m; ++i) {
      gens.emplace_back(mix(mix(options_.seed) ^ static_cast<uint64_t>(ids.data_ptr<int64_t>()[i])));
    }
    auto coin = [](std::mt19937_64& g) { return (g() >> 63) ? 1.0f : -1.0f; };

    // The start: vertical stripes of +-eps.
    torch::Tensor stripes = torch::empty({m, channels, 1, w}, torch::kFloat32);
    {
      auto s = stripes.accessor<float, 4>();
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t ch = 0; ch < channels; ++ch) {
          for (int64_t col = 0; col < w; ++col) s[i][ch][0][col] = coin(gens[i]);
        }
      }
    }
    torch::NoGradGuard ng;
    torch::Tensor current = (x0 + eps * stripes.to(x0.device())).clamp(0.0, 1.0);
    const torch::Tensor goal = c.goal().index_select(0, rows);
    auto margin_of = [&](const torch::Tensor& images, const torch::Tensor& local) {
      c.count_forward(rows.index_select(0, local));
      return attack_margin(c.model.forward(images), goal.index_select(0, local), c.targeted);
    };
    torch::Tensor all = torch::arange(m, rows.options());
    torch::Tensor margin = margin_of(current, all);
    c.r.iterations.index_add_(0, rows, torch::ones({m}, c.r.iterations.options()));

    for (int64_t q = 1; q < queries; ++q) {
      torch::Tensor active = margin.ge(0).nonzero().squeeze(1);  // not fooled yet
      const int64_t a = active.size(0);
      if (a == 0) break;
      const double p = window_share(q, queries, stretched);
      const int64_t side = std::min<int64_t>(std::max<int64_t>(std::llround(std::sqrt(p * static_cast<double>(h * w))), 1),
                                             std::max<int64_t>(std::min(h, w) - 1, 1));
      torch::Tensor mask = torch::zeros({a, 1, h, w}, torch::kBool);
      torch::Tensor signs = torch::empty({a, channels, 1, 1}, torch::kFloat32);
      {
        auto mk = mask.accessor<bool, 4>();
        auto sg = signs.accessor<float, 4>();
        const auto* act = active.cpu().data_ptr<int64_t>();
        for (int64_t i = 0; i < a; ++i) {
          std::mt19937_64& g = gens[act[i]];
          const int64_t top = static_cast<int64_t>(g() % static_cast<uint64_t>(h - side + 1));
          const int64_t left = static_cast<int64_t>(g() % static_cast<uint64_t>(w - side + 1));
          for (int64_t ch = 0; ch < channels; ++ch) sg[i][ch][0][0] = coin(g);
          for (int64_t r = top; r < top + side; ++r) {
            for (int64_t col = left; col < left + side; ++col) mk[i][0][r][col] = true;
          }
        }
      }
      const torch::Tensor base = x0.index_select(0, active), cur = current.index_select(0, active);
      torch::Tensor delta = torch::where(mask.to(base.device()), eps * signs.to(base.device()), cur - base);
      torch::Tensor candidate = (base + delta).clamp(0.0, 1.0);
      torch::Tensor cand_margin = margin_of(candidate, active);
      c.r.iterations.index_add_(0, rows.index_select(0, active), torch::ones({a}, c.r.iterations.options()));
      torch::Tensor better = cand_margin.lt(margin.index_select(0, active));
      current.index_copy_(0, active, torch::where(better.view({-1, 1, 1, 1}), candidate, cur));
      margin.index_copy_(0, active, torch::where(better, cand_margin, margin.index_select(0, active)));
    }
    c.r.adversarial.index_copy_(0, rows, current);
  }
};

}  // namespace

std::unique_ptr<Attack> make_square(const AttackOptions& options) { return std::make_unique<Square>(options); }

}  // namespace sdsgsm
