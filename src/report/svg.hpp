// A small SVG chart writer for the HTML report: line charts, histograms and heat maps, with axes,
// ticks, units and legends. Output is a standalone <svg> element (inline in the page), and a
// deterministic function of its input: numbers are printed with fixed precision, no ids or times.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace sdsgsm::svg {

/// The colour of series i (a palette readable by colour-blind people: Okabe and Ito's, then Tableau's).
std::string color(size_t i);

/// Text escaped for XML (and HTML): & < > " '.
std::string escape(const std::string& text);

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;
  std::string color;  ///< "" for the palette's colour of the series' position
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  /// Axis ranges; NaN: from the data (with nice rounded ends).
  static constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();
  double x_min = kAuto, x_max = kAuto, y_min = kAuto, y_max = kAuto;
  bool y_percent = false;  ///< y in [0,1] shown as percent
  int width = 640, height = 330;
};
std::string line_chart(const LineChart& chart);

struct Histogram {
  std::string title, x_label;
  std::vector<double> values;
  double lo = 0, hi = 1;  ///< the binned range (values outside are counted in the end bins)
  int bins = 30;
  std::string color = "#0072B2";
  int width = 300, height = 170;
};
std::string histogram(const Histogram& h);

/// Counts as a heat map (rows x columns), each cell labelled with its count.
struct HeatMap {
  std::string title, x_label, y_label;
  std::vector<std::string> rows, columns;
  std::vector<std::vector<double>> values;
  int cell = 26;
  double top = 0;           ///< the value of the darkest shade; 0: the largest value
  bool label_zero = false;  ///< label cells of value 0 too (blank otherwise)
};
std::string heat_map(const HeatMap& h);

/// Ticks for [lo, hi]: about `target` round numbers (1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace sdsgsm::svg
