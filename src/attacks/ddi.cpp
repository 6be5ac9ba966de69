// Decision-dependent domain identification and the allocation maps of SD-SGSM
// (include/sdsgsm/sdsgsm.hpp).
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "attack_common.hpp"
#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {
namespace {

std::vector<int64_t> window_starts(int64_t size, int64_t k, int64_t s) {
  std::vector<int64_t> starts;
  for (int64_t p = 0; p + k <= size; p += s) starts.push_back(p);
  // A last window clipped at the border when the regular ones stop short of it.
  if (starts.empty() || starts.back() + k < size) starts.push_back(starts.empty() ? 0 : starts.back() + s);
  return starts;
}

/// The window sides and strides on an H x W image: window 0 is half of each side (rounded up),
/// stride 0 the window.
struct WindowGrid {
  int64_t kh, kw, sh, sw;
};

WindowGrid window_grid(int64_t h, int64_t w, const DdiOptions& o) {
  WindowGrid g{o.window > 0 ? o.window : (h + 1) / 2, o.window > 0 ? o.window : (w + 1) / 2, 0, 0};
  g.sh = o.stride > 0 ? o.stride : g.kh;
  g.sw = o.stride > 0 ? o.stride : g.kw;
  return g;
}

/// What occluded pixels are set to: N x C x H x W.
torch::Tensor fill_values(const torch::Tensor& x, const std::string& fill) {
  if (fill == "zero") return torch::zeros_like(x);
  // mean: each image's own per-channel mean (not a data set's: any data, any batch).
  if (fill == "mean") return x.mean({2, 3}, true).expand_as(x);
  // blur: a 5 x 5 box blur of the image itself (border windows average what exists).
  return torch::avg_pool2d(x, 5, 1, 2, /*ceil_mode=*/false, /*count_include_pad=*/false);
}

/// Per-image score of each (possibly occluded) copy; higher = the class is better supported.
/// prob: p_y; margin: z_y - max_{j != y} z_j; loss: -CE = log p_y.
torch::Tensor support(const torch::Tensor& logits, const torch::Tensor& y, const std::string& score) {
  auto idx = y.view({-1, 1});
  if (score == "prob") return torch::softmax(logits, 1).gather(1, idx).squeeze(1);
  if (score == "loss") return torch::log_softmax(logits, 1).gather(1, idx).squeeze(1);
  auto zy = logits.gather(1, idx).squeeze(1);
  auto others = logits.scatter(1, idx, -std::numeric_limits<float>::infinity());
  return zy - std::get<0>(others.max(1));
}

}  // namespace

const OptionSet<DdiOptions>& DdiOptions::option_set() {
  using O = DdiOptions;
  constexpr unsigned kSd = family_bit(AttackFamily::FixedBudget);
  static const OptionSet<O> set(
      "ddi",
      {
          option("window", &O::window, "DDI window side k (0: half the image's height and width)")
              .in(kSd)
              .checked([](const O& o) {
                return o.window < 0 ? fmt::format("--window must be >= 1, or 0 for half the image (got {})", o.window) : "";
              }),
          option("stride", &O::stride, "DDI window stride s (<= k; 0: the window)")
              .in(kSd)
              .checked([](const O& o) {
                return o.stride < 0 || (o.window > 0 && o.stride > o.window)
                           ? fmt::format("--stride must be in [1, window] so every pixel is covered, or 0 for the "
                                         "window (got {} with window {})",
                                         o.stride, o.window)
                           : "";
              }),
          option("fill", &O::fill, "Zero-out fill: zero, mean (each image's channel means) or blur")
              .in(kSd)
              .one_of({"zero", "mean", "blur"}),
          option("score", &O::score, "Window score: prob (true-class probability drop), margin or loss")
              .in(kSd)
              .one_of({"prob", "margin", "loss"}),
          // The memory bound changes no result: read, never written.
          option("ddi-batch", &O::max_batch, "Occluded images per forward call")
              .in(kSd)
              .json_key("max_batch")
              .when([](const O&) { return false; })
              .at_least(1),
      });
  return set;
}

void DdiOptions::validate() const { option_set().validate(*this); }

nlohmann::json DdiOptions::to_json() const { return option_set().to_json(*this); }

DdiOptions DdiOptions::from_json(const nlohmann::json& j) {
  DdiOptions o;
  option_set().read_json(j, o);
  return o;
}

const OptionSet<SdsgsmOptions>& SdsgsmOptions::option_set() {
  using O = SdsgsmOptions;
  constexpr unsigned kSd = family_bit(AttackFamily::FixedBudget);
  static const OptionSet<O> set(
      "sdsgsm",
      {
          option("rho", &O::rho, "Fraction of pixels in the decision-dependent domain")
              .in(kSd)
              .group(kDomainPart)
              .in_range(0, 1, RangeEnds::LeftOpen),
          option("lambda", &O::lambda, "Background weight of the allocation map")
              .in(kSd)
              .group(kMapPart)
              .alias("lambda_")
              .in_range(0, 1),
          option("map", &O::map, "Allocation map: hard or soft")
              .in(kSd)
              .group(kMapPart)
              .one_of({"hard", "soft"}),
          option("gamma", &O::gamma, "Soft map exponent")
              .in(kSd)
              .group(kMapPart)
              .positive(),
          option("beta", &O::beta, "tanh sharpness of the smoothed sign")
              .in(kSd)
              .group(kStepPart)
              .positive_or_infinite(),
          option("step-factor", &O::step_factor, "Default alpha = eps / steps x this")
              .in(kSd)
              .group(kStepPart)
              .positive(),
          option("rescale-step", &O::rescale_step, "Step map alpha M / mean(M) instead of alpha M")
              .in(kSd)
              .group(kStepPart),
          option("recompute-every", &O::recompute_every, "Recompute the map every R iterations (0: once)")
              .in(kSd)
              .group(kStepPart)
              .at_least(0),
      });
  return set;
}

SdsgsmOptions SdsgsmOptions::from_json(const nlohmann::json& j) {
  SdsgsmOptions o;
  if (j.is_object() && j.contains("ddi")) o.ddi = DdiOptions::from_json(j.at("ddi"));
  option_set().read_json(j, o);
  return o;
}

void SdsgsmOptions::validate(int64_t height, int64_t width) const {
  ddi.validate();
  if (height > 0 && (ddi.window > height || ddi.window > width)) {
    throw Error(fmt::format("--window {} is larger than the {}x{} image", ddi.window, height, width));
  }
  if (height > 0 && ddi.window == 0 && ddi.stride > 0) {
    const WindowGrid g = window_grid(height, width, ddi);
    if (ddi.stride > std::min(g.kh, g.kw)) {
      throw Error(fmt::format("--stride {} is larger than the {}x{} window (half the {}x{} image) it moves", ddi.stride,
                              g.kh, g.kw, height, width));
    }
  }
  option_set().validate(*this);
}

nlohmann::json SdsgsmOptions::to_json() const {
  nlohmann::json j = option_set().to_json(*this);
  j["ddi"] = ddi.to_json();
  return j;
}

torch::Tensor ddi_windows(int64_t h, int64_t w, const DdiOptions& o) {
  const WindowGrid g = window_grid(h, w, o);
  auto rows = window_starts(h, g.kh, g.sh), cols = window_starts(w, g.kw, g.sw);
  auto masks = torch::zeros({static_cast<int64_t>(rows.size() * cols.size()), h, w});
  int64_t i = 0;
  for (int64_t r : rows) {
    for (int64_t c : cols) {
      masks[i++].narrow(0, r, std::min(g.kh, h - r)).narrow(1, c, std::min(g.kw, w - c)).fill_(1.0f);
    }
  }
  return masks;
}

torch::Tensor sensitivity_map(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                              const DdiOptions& o, const torch::Tensor& logits) {
  o.validate();
  torch::NoGradGuard ng;
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto masks = ddi_windows(h, w, o).to(x.device());  // W x H x W
  const int64_t nw = masks.size(0);
  auto fill = fill_values(x, o.fill);
  auto base = support(logits.defined() ? logits : model.forward(x), y, o.score);  // N
  auto drops = torch::empty({n, nw}, x.options());
  auto m = masks.view({1, nw, 1, h, w}).to(torch::kBool);
  if (nw <= o.max_batch) {
    // All windows of several images per forward call, at most max_batch occluded images.
    const int64_t per_call = o.max_batch / nw;
    for (int64_t i = 0; i < n; i += per_call) {
      const int64_t b = std::min(per_call, n - i);
      auto xi = x.narrow(0, i, b).unsqueeze(1);     // b x 1 x C x H x W
      auto fi = fill.narrow(0, i, b).unsqueeze(1);  // b x 1 x C x H x W
      auto occluded = torch::where(m, fi, xi).reshape({b * nw, c, h, w});
      auto yi = y.narrow(0, i, b).repeat_interleave(nw);
      auto s = support(model.forward(occluded), yi, o.score).view({b, nw});
      drops.narrow(0, i, b).copy_(base.narrow(0, i, b).unsqueeze(1) - s);
    }
  } else {
    // More windows than max_batch: one image at a time, its windows max_batch per call.
    for (int64_t i = 0; i < n; ++i) {
      auto xi = x.narrow(0, i, 1);  // 1 x C x H x W
      auto fi = fill.narrow(0, i, 1);
      for (int64_t j = 0; j < nw; j += o.max_batch) {
        const int64_t b = std::min(o.max_batch, nw - j);
        auto occluded = torch::where(m[0].narrow(0, j, b), fi, xi);  // b x C x H x W
        auto s = support(model.forward(occluded), y.narrow(0, i, 1).expand({b}), o.score);
        drops[i].narrow(0, j, b).copy_(base[i] - s);
      }
    }
  }
  // S(i,j): mean drop of the windows covering (i,j), clamped at 0.
  auto cover = masks.sum(0);  // H x W, >= 1 everywhere
  auto s = torch::mm(drops, masks.view({nw, h * w})).view({n, 1, h, w}) / cover;
  return s.clamp_min(0.0);
}

torch::Tensor flat_maps(const torch::Tensor& s) {
  auto f = s.flatten(1);
  return (f.amax(1) - f.amin(1)).le(1e-12);
}

torch::Tensor normalize_sensitivity(const torch::Tensor& s) {
  auto f = s.flatten(1);
  auto lo = f.amin(1, true), hi = f.amax(1, true);
  auto norm = (f - lo) / (hi - lo + 1e-12);
  auto flat = flat_maps(s).unsqueeze(1);
  return torch::where(flat, torch::ones_like(norm), norm).view_as(s);
}

torch::Tensor domain_mask(const torch::Tensor& s_norm, double rho, const torch::Tensor& flat) {
  const int64_t n = s_norm.size(0), hw = s_norm[0].numel();
  const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(rho * hw - 1e-9)), 1, hw);
  // A stable descending sort: equal values keep their pixel order, so ties go to lower indices.
  auto order = std::get<1>(torch::sort(s_norm.reshape({n, hw}), /*stable=*/true, /*dim=*/1, /*descending=*/true));
  auto mask = torch::zeros({n, hw}, s_norm.options().dtype(torch::kBool));
  mask.scatter_(1, order.narrow(1, 0, k), true);
  if (flat.defined()) mask.masked_fill_(flat.view({n, 1}), true);
  return mask.view(s_norm.sizes());
}

torch::Tensor allocation_map(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                             const SdsgsmOptions& o) {
  return allocation_from_sensitivity(sensitivity_map(model, x, y, o.ddi), o);
}

torch::Tensor allocation_from_sensitivity(const torch::Tensor& s, const SdsgsmOptions& o) {
  auto flat = flat_maps(s);
  auto s_norm = normalize_sensitivity(s);
  if (o.map == "soft") return o.lambda + (1.0 - o.lambda) * s_norm.pow(o.gamma);
  auto d = domain_mask(s_norm, o.rho, flat);
  return torch::where(d, torch::ones_like(s_norm), torch::full_like(s_norm, o.lambda));
}

torch::Tensor SensitivityCache::get(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                                    const torch::Tensor& ids, const torch::Tensor& logits) {
  const int64_t n = x.size(0);
  auto id = ids.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* idp = id.data_ptr<int64_t>();
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < n; ++i) {
    if (!maps_.count(idp[i])) missing.push_back(i);
  }
  if (!missing.empty()) {
    auto t0 = std::chrono::steady_clock::now();
    auto rows = torch::tensor(missing, torch::kInt64).to(x.device());
    auto s = sensitivity_map(model, x.index_select(0, rows), y.index_select(0, rows), options_,
                             logits.defined() ? logits.index_select(0, rows) : torch::Tensor());
    for (size_t j = 0; j < missing.size(); ++j) maps_[idp[missing[j]]] = s[static_cast<int64_t>(j)].clone();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    computed_ += static_cast<int64_t>(missing.size());
  }
  std::vector<torch::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(maps_.at(idp[i]));
  return torch::stack(out);
}

torch::Tensor smoothed_sign(const torch::Tensor& g, double beta) {
  auto sigma = g.abs().mean({1, 2, 3}, true).clamp_min(1e-30);
  return torch::tanh(beta * g / sigma);
}

}  // namespace sdsgsm
