// The plot every measurement draws: one curve per programming level (one colour each, the same
// colours as the characterisation's CDF), the median with a band from the 10th to the 90th
// percentile of the cells, units on both axes and log axes where the quantity spans decades
// (docs/bench.md, "Measurements"). Drawn by gnuplot from a data file and script written next to
// the PNG, so `gnuplot <name>.gp` run in that folder draws it again.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "app/live/live_updates.hpp"

namespace metaplast::bench {

// The q-quantile (0..1) of `values`, linear between neighbours (q = 0.5: the median); NaN when
// there are none.
double quantile_of(std::vector<double> values, double q);

struct LevelCurve {
  int level = 0;                  // 0 = LCS, 1..N HCS
  std::string label;              // key entry: "level 3 (30 uA)"
  std::vector<double> x;          // e.g. time since programming (s), read count
  std::vector<double> median;     // e.g. conductance (uS)
  std::vector<double> low, high;  // band (same length as x; empty: no band)
  // An optional fitted model drawn as a thin line (same colour), sampled at fit_x.
  std::vector<double> fit_x, fit_y;
};

// The curve of the cells at `level` ("level <level>", no fit): at each of the first `points`
// recorded points k, x[k] and the median, 10th and 90th percentiles of conductance_us[k][c] over
// the cells c with cell_levels[c] == level (readings <= 0 or NaN left out; a point without any
// is skipped, and so is one with fewer than `min_cells` readings: a median of a handful of cells
// jumps).
LevelCurve level_curve(int level, const std::vector<int>& cell_levels, const std::vector<double>& x,
                       const std::vector<std::vector<double>>& conductance_us, std::size_t points,
                       std::size_t min_cells = 1);

struct LevelPlot {
  std::string title;                // shown as text (board serial, chip id: quoted, inert)
  std::string key_title = "Level";  // the key (legend) box's title: what the curves are
  // Axis labels with units, in gnuplot's enhanced-text markup (written by the code, never user
  // data): "Compliance current I_{CC} (µA)" draws CC as a subscript.
  std::string x_label;  // "Time since programming t (s)"
  std::string y_label;  // "Conductance G (µS)"
  bool log_x = false, log_y = false;
  std::vector<LevelCurve> curves;
};

// The plot as the live view draws it (docs/live.md): each curve's median and its fit as a dashed
// curve of the same colour; the bands are left out (the title then ends "(medians)" or
// "(medians; dashed: fits)"); gnuplot's markup in the labels made plain ("I_{CC}" -> "I_CC").
live::Plot to_live_plot(const LevelPlot& plot);

// Writes <stem>_plot.dat and <stem>.gp next to `png` (atomically; throws std::runtime_error
// naming a file that cannot be written) and runs gnuplot there. Returns "" when the PNG was
// drawn, else why not (gnuplot missing or failing; no half-drawn PNG is left).
std::string plot_levels(const LevelPlot& plot, const std::filesystem::path& png);

// The drawing part of plot_levels, for the other plots of the measurements (array maps): writes
// `data` to <stem>_plot.dat and `script` to <stem>.gp next to `png` and runs gnuplot there (the
// script names both by their file names only: plot_data_name(png), png.filename()). Same
// result and errors as plot_levels.
std::string draw_gnuplot_plot(const std::filesystem::path& png, const std::string& data,
                              const std::string& script);
// "<stem>_plot.dat": the data file's name draw_gnuplot_plot writes for `png`.
std::string plot_data_name(const std::filesystem::path& png);

}  // namespace metaplast::bench
