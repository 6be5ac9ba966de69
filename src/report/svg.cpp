#include "report/svg.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace sdsgsm::svg {
namespace {

const char* kFont = "font-family=\"DejaVu Sans, Arial, sans-serif\"";

/// A coordinate, to a tenth of a pixel (deterministic text, small files).
std::string px(double v) { return fmt::format("{:.1f}", v); }

/// Decimals that tell ticks `step` apart.
int decimals_for(double step) { return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))); }

std::string tick_label(double v, double step, bool percent) {
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0"
  if (percent) return fmt::format("{:.{}f}%", 100 * v, decimals_for(100 * step));
  return fmt::format("{:.{}f}", v, decimals_for(step));
}

/// The data range of the series, widened when empty or flat.
std::pair<double, double> range_of(const std::vector<Series>& series, bool x) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series) {
    for (double v : x ? s.x : s.y) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  if (!(lo <= hi)) return {0, 1};
  if (lo == hi) return {lo - 0.5, hi + 0.5};
  return {lo, hi};
}

struct Frame {
  double left, top, width, height;  ///< the plot area
  double x0, x1, y0, y1;            ///< the data range it shows
  double sx(double x) const { return left + (x - x0) / (x1 - x0) * width; }
  double sy(double y) const { return top + height - (y - y0) / (y1 - y0) * height; }
};

/// Title, frame, grid lines, ticks and axis labels.
std::string axes(const Frame& f, const std::string& title, const std::string& x_label, const std::string& y_label,
                 const std::vector<double>& xt, const std::vector<double>& yt, bool y_percent, int total_width) {
  std::string out;
  out += fmt::format("<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                     px(total_width / 2.0), escape(title));
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : xt) {
    const double x = f.sx(t);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e4e4e4\"/>\n", px(x), px(f.top),
                       px(f.top + f.height));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n", px(x),
                       px(f.top + f.height + 15), tick_label(t, xstep, false));
  }
  for (double t : yt) {
    const double y = f.sy(t);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#e4e4e4\"/>\n", px(f.left), px(y),
                       px(f.left + f.width));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{}</text>\n", px(f.left - 5),
                       px(y + 4), tick_label(t, ystep, y_percent));
  }
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", px(f.left),
                     px(f.top), px(f.width), px(f.height));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
                     px(f.left + f.width / 2), px(f.top + f.height + 33), escape(x_label));
  out += fmt::format(
      "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 {0})\">{1}</text>\n",
      px(f.top + f.height / 2), escape(y_label));
  return out;
}

std::string open_svg(int width, int height, const std::string& label) {
  return fmt::format(
      "<svg width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
      "aria-label=\"{2}\" {3}>\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      width, height, escape(label), kFont);
}

}  // namespace

std::string color(size_t i) {
  static const std::vector<std::string> palette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                                                   "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD"};
  return palette[i % palette.size()];
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * p;
    if (step >= raw) break;
  }
  std::vector<double> t;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) t.push_back(k * step);
  return t;
}

std::string line_chart(const LineChart& c) {
  auto [dx0, dx1] = range_of(c.series, true);
  auto [dy0, dy1] = range_of(c.series, false);
  Frame f;
  f.left = 62;
  f.top = 30;
  f.width = c.width - f.left - 175;
  f.height = c.height - f.top - 48;
  f.x0 = std::isnan(c.x_min) ? dx0 : c.x_min;
  f.x1 = std::isnan(c.x_max) ? dx1 : c.x_max;
  f.y0 = std::isnan(c.y_min) ? dy0 : c.y_min;
  f.y1 = std::isnan(c.y_max) ? dy1 : c.y_max;
  if (!(f.x1 > f.x0)) f.x1 = f.x0 + 1;
  if (!(f.y1 > f.y0)) f.y1 = f.y0 + 1;
  std::string out = open_svg(c.width, c.height, c.title);
  out += axes(f, c.title, c.x_label, c.y_label, nice_ticks(f.x0, f.x1, 6), nice_ticks(f.y0, f.y1, 5), c.y_percent,
              c.width);
  for (size_t i = 0; i < c.series.size(); ++i) {
    const auto& s = c.series[i];
    const std::string stroke = s.color.empty() ? color(i) : s.color;
    std::string points;
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) continue;
      const double x = std::clamp(f.sx(s.x[k]), f.left, f.left + f.width);
      const double y = std::clamp(f.sy(s.y[k]), f.top, f.top + f.height);
      points += (points.empty() ? "" : " ") + px(x) + "," + px(y);
    }
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"><title>{}</title></polyline>\n",
                       stroke, s.dashed ? " stroke-dasharray=\"6 3\"" : "", points, escape(s.name));
    // Legend, right of the plot: one line per series.
    const double ly = f.top + 8 + 18 * i, lx = f.left + f.width + 12;
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2.5\"{4}/>\n", px(lx),
                       px(ly), px(lx + 22), stroke, s.dashed ? " stroke-dasharray=\"6 3\"" : "");
    std::string name = s.name.size() > 24 ? s.name.substr(0, 23) + "…" : s.name;
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>\n", px(lx + 27), px(ly + 4), escape(name));
  }
  return out + "</svg>\n";
}

std::string histogram(const Histogram& h) {
  const int bins = std::max(1, h.bins);
  const double lo = h.lo, hi = h.hi > h.lo ? h.hi : h.lo + 1;
  std::vector<double> count(bins, 0);
  for (double v : h.values) {
    if (!std::isfinite(v)) continue;
    auto b = static_cast<int64_t>(std::floor((v - lo) / (hi - lo) * bins));
    count[std::clamp<int64_t>(b, 0, bins - 1)] += 1;
  }
  const double top = std::max(1.0, *std::max_element(count.begin(), count.end()));
  auto yt = nice_ticks(0, top, 3);
  Frame f;
  f.left = 46;
  f.top = 26;
  f.width = h.width - f.left - 10;
  f.height = h.height - f.top - 44;
  f.x0 = lo;
  f.x1 = hi;
  f.y0 = 0;
  f.y1 = std::max(top, yt.back());
  std::string out = open_svg(h.width, h.height, h.title);
  std::string bars;
  for (int b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    const double x0 = f.sx(lo + (hi - lo) * b / bins), x1 = f.sx(lo + (hi - lo) * (b + 1) / bins);
    bars += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", px(x0), px(f.sy(count[b])),
                        px(std::max(0.5, x1 - x0 - 0.5)), px(f.sy(0) - f.sy(count[b])), h.color);
  }
  std::string frame = axes(f, h.title, h.x_label, "images", nice_ticks(lo, hi, 4), yt, false, h.width);
  // The title is smaller in a small multiple.
  const std::string big = "font-size=\"14\" font-weight=\"bold\"";
  frame.replace(frame.find(big), big.size(), "font-size=\"12\" font-weight=\"bold\"");
  return out + frame + bars + "</svg>\n";
}

std::string heat_map(const HeatMap& h) {
  const double left = 88, top = 30;
  const auto nr = static_cast<double>(h.rows.size()), nc = static_cast<double>(h.columns.size());
  const int width = static_cast<int>(left + nc * h.cell + 12), height = static_cast<int>(top + nr * h.cell + 70);
  double top_value = h.top;
  for (const auto& r : h.values) {
    for (double v : r) top_value = h.top > 0 ? top_value : std::max(top_value, v);
  }
  std::string out = open_svg(width, height, h.title);
  out += fmt::format("<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">{}</text>\n",
                     px(width / 2.0), escape(h.title));
  for (size_t i = 0; i < h.rows.size(); ++i) {
    const double y = top + i * h.cell;
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{}</text>\n", px(left - 4),
                       px(y + h.cell / 2.0 + 3), escape(h.rows[i]));
    for (size_t j = 0; j < h.columns.size() && j < h.values[i].size(); ++j) {
      const double v = h.values[i][j], t = top_value > 0 ? std::clamp(v / top_value, 0.0, 1.0) : 0;
      // White to dark blue; the count in white on dark cells.
      const int r = static_cast<int>(std::lround(255 - t * (255 - 8))), g = static_cast<int>(std::lround(255 - t * (255 - 69))),
                b = static_cast<int>(std::lround(255 - t * (255 - 148)));
      const double x = left + j * h.cell;
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#{:02x}{:02x}{:02x}\" stroke=\"#ddd\"/>\n",
                         px(x), px(y), h.cell, h.cell, r, g, b);
      if (v > 0 || (h.label_zero && v == 0)) {
        out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\" fill=\"{}\">{}</text>\n",
                           px(x + h.cell / 2.0), px(y + h.cell / 2.0 + 3), t > 0.5 ? "white" : "#222", fmt::format("{:g}", v));
      }
    }
  }
  for (size_t j = 0; j < h.columns.size(); ++j) {
    const double x = left + j * h.cell + h.cell / 2.0, y = top + nr * h.cell + 6;
    out += fmt::format("<text x=\"{0}\" y=\"{1}\" text-anchor=\"end\" font-size=\"10\" transform=\"rotate(-50 {0} {1})\">{2}</text>\n",
                       px(x), px(y), escape(h.columns[j]));
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n",
                     px(left + nc * h.cell / 2), px(height - 4.0), escape(h.x_label));
  out += fmt::format("<text x=\"10\" y=\"{0}\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 10 {0})\">{1}</text>\n",
                     px(top + nr * h.cell / 2), escape(h.y_label));
  return out + "</svg>\n";
}

}  // namespace sdsgsm::svg
