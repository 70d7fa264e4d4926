#include "app/bench/level_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "app/util/gnuplot.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;

namespace {

// Ten distinguishable colours, level 0 black (as the characterisation's CDF plot).
const char* colour(int level) {
  static const char* kColours[] = {"#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
  return kColours[static_cast<unsigned>(level) % 10];
}

std::string data_text(const LevelPlot& plot) {
  std::ostringstream out;
  char line[128];
  // Blocks 2i: the curve of curves[i] (x median low high); 2i+1: its fit (x y).
  for (const auto& c : plot.curves) {
    out << "# " << c.label << ": x median low high\n";
    for (std::size_t i = 0; i < c.x.size(); ++i) {
      const double lo = c.low.empty() ? c.median[i] : c.low[i];
      const double hi = c.high.empty() ? c.median[i] : c.high[i];
      std::snprintf(line, sizeof line, "%.9g %.7g %.7g %.7g\n", c.x[i], c.median[i], lo, hi);
      out << line;
    }
    out << "\n\n# " << c.label << ": fit x y\n";
    for (std::size_t i = 0; i < c.fit_x.size(); ++i) {
      std::snprintf(line, sizeof line, "%.9g %.7g\n", c.fit_x[i], c.fit_y[i]);
      out << line;
    }
    if (c.fit_x.empty()) out << "nan nan\n";  // an empty block would shift the indices
    out << "\n\n";
  }
  return out.str();
}

std::string script_text(const LevelPlot& plot, const fs::path& data, const fs::path& png,
                        const std::string& script_name) {
  std::ostringstream g;
  g << "# Draw with `gnuplot " << script_name << "` in this folder.\n"
    << "set terminal pngcairo size 1100,720 enhanced font 'DejaVu Sans,12'\n"
    << "set output " << util::gnuplot_quote(png.filename().string()) << "\n"
    << "set key outside right top title " << util::gnuplot_quote_text(plot.key_title) << " box\n"
    << (plot.log_x ? "set logscale x\n" : "") << (plot.log_y ? "set logscale y\n" : "")
    << "set grid xtics ytics mxtics lc rgb '#dddddd'\n"
    << "set xlabel " << util::gnuplot_quote(plot.x_label) << "\n"
    << "set ylabel " << util::gnuplot_quote(plot.y_label) << "\n"
    << "set title " << util::gnuplot_quote(plot.title) << " noenhanced\n"
    << "data = " << util::gnuplot_quote(data.filename().string()) << "\n"
    << "plot ";
  for (std::size_t i = 0; i < plot.curves.size(); ++i) {
    const auto& c = plot.curves[i];
    const std::string rgb = std::string("rgb '") + colour(c.level) + "'";
    if (i > 0) g << ", \\\n     ";
    g << "data index " << 2 * i << " using 1:3:4 with filledcurves lc " << rgb
      << " fs transparent solid 0.15 notitle, \\\n     "
      << "data index " << 2 * i << " using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc " << rgb
      << " title " << util::gnuplot_quote_text(c.label);
    if (!c.fit_x.empty()) {
      g << ", \\\n     data index " << 2 * i + 1 << " using 1:2 with lines dt 2 lw 1 lc " << rgb
        << " notitle";
    }
  }
  if (plot.curves.empty()) g << "NaN notitle";
  g << "\n";
  return g.str();
}

}  // namespace

double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

LevelCurve level_curve(int level, const std::vector<int>& cell_levels, const std::vector<double>& x,
                       const std::vector<std::vector<double>>& conductance_us, std::size_t points,
                       std::size_t min_cells) {
  LevelCurve curve;
  curve.level = level;
  curve.label = "level " + std::to_string(level);
  for (std::size_t k = 0; k < points; ++k) {
    std::vector<double> v;
    for (std::size_t c = 0; c < cell_levels.size(); ++c) {
      if (cell_levels[c] == level && conductance_us[k][c] > 0) v.push_back(conductance_us[k][c]);
    }
    if (v.empty() || v.size() < min_cells) continue;
    curve.x.push_back(x[k]);
    curve.median.push_back(quantile_of(v, 0.5));
    curve.low.push_back(quantile_of(v, 0.1));
    curve.high.push_back(quantile_of(v, 0.9));
  }
  return curve;
}

std::string plot_data_name(const fs::path& png) { return png.stem().string() + "_plot.dat"; }

std::string draw_gnuplot_plot(const fs::path& png, const std::string& data,
                              const std::string& script) {
  const fs::path script_file = png.parent_path() / (png.stem().string() + ".gp");
  common::write_file_atomically(png.parent_path() / plot_data_name(png), data);
  common::write_file_atomically(script_file, script);
  std::error_code ec;
  fs::remove(png, ec);
  std::string error = util::run_gnuplot(script_file);
  if (error.empty() && fs::file_size(png, ec) == 0) {
    error = "gnuplot wrote no " + png.string() + " (disk full?)";
  }
  if (!error.empty()) fs::remove(png, ec);  // never a half-drawn picture
  return error;
}

std::string plot_levels(const LevelPlot& plot, const fs::path& png) {
  const fs::path data = png.parent_path() / plot_data_name(png);
  const std::string script_name = png.stem().string() + ".gp";
  return draw_gnuplot_plot(png, data_text(plot), script_text(plot, data, png, script_name));
}

namespace {

// "Compliance current I_{CC} (µA)" -> "Compliance current I_CC (µA)".
std::string plain_label(std::string text) {
  for (std::size_t at = text.find("_{"); at != std::string::npos; at = text.find("_{", at)) {
    const std::size_t end = text.find('}', at);
    if (end == std::string::npos) break;
    text.erase(end, 1);
    text.erase(at + 1, 1);
  }
  return text;
}

}  // namespace

live::Plot to_live_plot(const LevelPlot& plot) {
  live::Plot out;
  out.title = plot.title;
  out.x_label = plain_label(plot.x_label);
  out.y_label = plain_label(plot.y_label);
  out.log_x = plot.log_x;
  out.log_y = plot.log_y;
  bool bands = false, fits = false;
  for (const auto& c : plot.curves) {
    bands = bands || !c.low.empty();
    fits = fits || !c.fit_x.empty();
    const std::string label =
        plain_label(c.label.empty() ? "level " + std::to_string(c.level) : c.label);
    out.series.push_back({label, c.x, c.median, c.level, false});
    if (!c.fit_x.empty()) out.series.push_back({label + ", fit", c.fit_x, c.fit_y, c.level, true});
  }
  // The page draws no band: the title says what the curves are (the PNG has the bands).
  if (bands) out.title += fits ? " (medians; dashed: fits)" : " (medians)";
  return out;
}

}  // namespace metaplast::bench
