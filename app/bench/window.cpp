#include "app/bench/window.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "app/bench/level_plot.hpp"
#include "app/bench/options.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
namespace in = metaplast::instruments;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void check_axis(const std::string& key, const std::vector<double>& values, double min, double max,
                const char* unit) {
  for (double v : values) {
    if (!std::isfinite(v) || v < min || v > max) {
      throw OptionError(key, "every value must be in [" + number_text(min) + ", " +
                                 number_text(max) + "] " + unit + ", got " + number_text(v));
    }
  }
}

std::size_t axis_size(const std::vector<double>& v) { return std::max<std::size_t>(1, v.size()); }

}  // namespace

std::vector<double> parse_sweep(const std::string& key, const std::string& text) {
  const auto number = [&](const std::string& s) {
    try {
      std::size_t used = 0;
      const double v = std::stod(s, &used);
      if (used == s.size() && std::isfinite(v)) return v;
    } catch (const std::exception&) {
    }
    throw OptionError(key, "\"" + s +
                               "\" is not a number (a sweep is start:stop:step or a list "
                               "a,b,c)");
  };
  std::vector<std::string> parts;
  const char sep = text.find(':') != std::string::npos ? ':' : ',';
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  if (text.empty() || parts.empty()) throw OptionError(key, "empty sweep");
  std::vector<double> values;
  if (sep == ',') {
    for (const auto& p : parts) values.push_back(number(p));
    return values;
  }
  if (parts.size() != 3) {
    throw OptionError(key, "\"" + text + "\": a sweep is start:stop:step (three numbers)");
  }
  const double start = number(parts[0]), stop = number(parts[1]), step = number(parts[2]);
  if (!(step > 0) || stop < start) {
    throw OptionError(key, "\"" + text + "\": needs step > 0 and stop >= start");
  }
  const double n = std::floor((stop - start) / step + 1e-3);
  if (n + 1 > static_cast<double>(kMaxWindowPoints)) {
    throw OptionError(
        key, "\"" + text + "\" has more than " + std::to_string(kMaxWindowPoints) + " values");
  }
  for (int i = 0; i <= static_cast<int>(n); ++i) {
    // Rounded to 1e-9 so 0.1 steps give 0.3, not 0.30000000000000004.
    values.push_back(std::round((start + i * step) * 1e9) / 1e9);
  }
  return values;
}

void check_window_options(const WindowOptions& o) {
  if (o.cells < 1 || o.cells > static_cast<std::size_t>(kMaxWindowCells)) {
    throw OptionError("cells", "must be in 1.." + std::to_string(kMaxWindowCells));
  }
  check_axis("gate-v", o.gate_v, 0.0, 10.0, "V");
  check_axis("bl-v", o.bl_v, 0.0, 10.0, "V");
  check_axis("width-ns", o.width_ns, 1.0, 1e9, "ns");
  if (o.gate_v.size() < 2 && o.bl_v.size() < 2 && o.width_ns.size() < 2) {
    throw OptionError("gate-v",
                      "nothing is swept: give two values or more of --gate-v, --bl-v or "
                      "--width-ns (a list a,b,c or start:stop:step)");
  }
  const std::size_t points = axis_size(o.gate_v) * axis_size(o.bl_v) * axis_size(o.width_ns);
  if (points > kMaxWindowPoints) {
    throw OptionError("gate-v", "the sweep has " + std::to_string(points) + " points, at most " +
                                    std::to_string(kMaxWindowPoints));
  }
  if (!(o.formed_threshold_us >= 0) || !std::isfinite(o.formed_threshold_us)) {
    throw OptionError("formed-threshold-us", "must be >= 0 (0: 0.2 x the LCS target)");
  }
  if (!(o.switched_threshold_us >= 0) || !std::isfinite(o.switched_threshold_us)) {
    throw OptionError("switched-threshold-us",
                      "must be >= 0 (0: midway between the LCS and level-1 targets)");
  }
}

json to_json(const WindowOptions& o) {
  return {{"cells", o.cells},
          {"seed", o.seed},
          {"formed-threshold-us", o.formed_threshold_us},
          {"gate-v", o.gate_v},
          {"bl-v", o.bl_v},
          {"width-ns", o.width_ns},
          {"switched-threshold-us", o.switched_threshold_us}};
}

WindowOptions window_options_from_json(const json& step) {
  json_only_keys(step, {"cells", "seed", "formed-threshold-us", "gate-v", "bl-v", "width-ns",
                        "switched-threshold-us"});
  WindowOptions o;
  if (step.contains("cells")) o.cells = json_integer(step, "cells", 1, kMaxWindowCells);
  if (step.contains("seed")) {
    o.seed = static_cast<std::uint64_t>(json_integer(step, "seed", 0, INT64_MAX));
  }
  if (step.contains("formed-threshold-us")) {
    o.formed_threshold_us = json_number(step, "formed-threshold-us", 0, 1e6);
  }
  if (step.contains("switched-threshold-us")) {
    o.switched_threshold_us = json_number(step, "switched-threshold-us", 0, 1e6);
  }
  for (auto [key, axis] : {std::pair{"gate-v", &o.gate_v}, std::pair{"bl-v", &o.bl_v},
                           std::pair{"width-ns", &o.width_ns}}) {
    if (!step.contains(key)) continue;
    *axis = json_numbers(step, key);
  }
  check_window_options(o);
  return o;
}

double board_icc_ua(const std::vector<in::LevelInfo>& levels, double gate_v) {
  std::vector<std::pair<double, double>> table;  // (gate, icc) of levels 1..N
  for (std::size_t l = 1; l < levels.size(); ++l) {
    table.emplace_back(levels[l].gate_voltage_v, levels[l].icc_ua);
  }
  std::sort(table.begin(), table.end());
  if (table.empty()) return kNaN;
  if (table.size() == 1) {
    return table[0].first > 0 ? std::max(0.0, table[0].second * gate_v / table[0].first) : kNaN;
  }
  std::size_t i = 1;
  while (i + 1 < table.size() && gate_v > table[i].first) ++i;
  const auto [g0, i0] = table[i - 1];
  const auto [g1, i1] = table[i];
  return std::max(0.0, i0 + (i1 - i0) * (gate_v - g0) / (g1 - g0));
}

// ---------------------------------------------------------------------------------------------
// The S-curve

namespace {

double phi(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Negative log-likelihood of the binomial counts.
double s_curve_nll(const std::vector<double>& v, const std::vector<std::size_t>& k,
                   const std::vector<std::size_t>& n, double v50, double t) {
  double nll = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double p = std::clamp(set_switch_probability(v[i], v50, t), 1e-9, 1 - 1e-9);
    nll -=
        static_cast<double>(k[i]) * std::log(p) + static_cast<double>(n[i] - k[i]) * std::log1p(-p);
  }
  return nll;
}

}  // namespace

double set_switch_probability(double bl_v, double v50_v, double transition_v) {
  if (bl_v >= v50_v + transition_v / 2) return 1.0;
  if (transition_v <= 0) return 0.0;
  const double z = (bl_v - v50_v) / (transition_v / 6);
  if (z <= -3) return 0.0;
  const double lo = phi(-3), hi = phi(3);
  return std::clamp((phi(z) - lo) / (hi - lo), 0.0, 1.0);
}

std::optional<SCurveFit> fit_s_curve(const std::vector<double>& v,
                                     const std::vector<std::size_t>& k,
                                     const std::vector<std::size_t>& n) {
  if (v.size() < 3) return std::nullopt;
  const auto [vmin, vmax] = std::minmax_element(v.begin(), v.end());
  // A coarse grid, then finer ones around the best point.
  double best_v50 = *vmin, best_t = 0.1, best = std::numeric_limits<double>::infinity();
  double lo_v = *vmin - 0.5, hi_v = *vmax + 0.5, lo_t = 0.0, hi_t = 2.0;
  for (int pass = 0; pass < 4; ++pass) {
    const double step_v = (hi_v - lo_v) / 120, step_t = (hi_t - lo_t) / 120;
    for (int i = 0; i <= 120; ++i) {
      for (int j = 0; j <= 120; ++j) {
        const double v50 = lo_v + i * step_v, t = lo_t + j * step_t;
        const double nll = s_curve_nll(v, k, n, v50, t);
        if (nll < best) {
          best = nll;
          best_v50 = v50;
          best_t = t;
        }
      }
    }
    lo_v = best_v50 - 4 * step_v;
    hi_v = best_v50 + 4 * step_v;
    lo_t = std::max(0.0, best_t - 4 * step_t);
    hi_t = best_t + 4 * step_t;
  }
  SCurveFit fit;
  fit.v50_v = best_v50;
  fit.transition_v = best_t;
  // Standard errors from the numerical Hessian of the log-likelihood (t > 0 only).
  const double h = std::max(1e-3, best_t / 50);
  const auto f = [&](double a, double b) { return s_curve_nll(v, k, n, a, b); };
  if (best_t > 2 * h) {
    const double f0 = best;
    const double faa = (f(best_v50 + h, best_t) - 2 * f0 + f(best_v50 - h, best_t)) / (h * h);
    const double fbb = (f(best_v50, best_t + h) - 2 * f0 + f(best_v50, best_t - h)) / (h * h);
    const double fab = (f(best_v50 + h, best_t + h) - f(best_v50 + h, best_t - h) -
                        f(best_v50 - h, best_t + h) + f(best_v50 - h, best_t - h)) /
                       (4 * h * h);
    const double det = faa * fbb - fab * fab;
    if (faa > 0 && fbb > 0 && det > 0) {
      const double var_v = fbb / det, var_t = faa / det, cov = -fab / det;
      fit.v50_se_v = std::sqrt(var_v);
      fit.transition_se_v = std::sqrt(var_t);
      fit.threshold_se_v = std::sqrt(std::max(0.0, var_v + var_t / 4 + cov));
    }
  }
  // Identifiable when the transition was sampled: two amplitudes with fractions inside (0, 1).
  std::size_t inside = 0;
  for (std::size_t i = 0; i < v.size(); ++i) inside += k[i] > 0 && k[i] < n[i];
  fit.identifiable = inside >= 2 && fit.v50_se_v.has_value();
  return fit;
}

// ---------------------------------------------------------------------------------------------
// The measurement

WindowMeasurement::WindowMeasurement(WindowOptions options) : options_(std::move(options)) {}

void WindowMeasurement::resolve(const in::ArrayBoard& board) {
  const auto& info = board.info();
  const auto& s = board.settings();
  levels_ = info.levels;
  if (levels_.size() < 2) throw std::invalid_argument("window: the board reports no HCS level");
  const double top_gate = levels_.back().gate_voltage_v;
  gates_ = options_.gate_v.empty() ? std::vector<double>{top_gate} : options_.gate_v;
  bls_ = options_.bl_v.empty() ? std::vector<double>{s.set_bl_voltage_v} : options_.bl_v;
  widths_ =
      options_.width_ns.empty() ? std::vector<double>{s.set_pulse_width_ns} : options_.width_ns;
  // The reference pulse: the settings' SET amplitude and width and the top level's gate where
  // swept over, else the largest value of the axis.
  const auto pick = [](const std::vector<double>& axis, double preferred) {
    for (double v : axis) {
      if (std::fabs(v - preferred) < 1e-9) return v;
    }
    return *std::max_element(axis.begin(), axis.end());
  };
  reference_bl_v_ = pick(bls_, s.set_bl_voltage_v);
  reference_width_ns_ = pick(widths_, s.set_pulse_width_ns);
  reference_gate_v_ = pick(gates_, top_gate);
  threshold_us_ = options_.switched_threshold_us > 0
                      ? options_.switched_threshold_us
                      : 0.5 * (levels_[0].target_conductance_us + levels_[1].target_conductance_us);
  points_.clear();
  for (double w : widths_) {
    for (double g : gates_) {
      for (double b : bls_) points_.push_back({g, b, w});
    }
  }
}

void WindowMeasurement::check_limits(const in::ArrayBoard& board) const {
  const auto& station = board.station_limits();
  const auto& b = board.info().limits;
  const auto refuse = [&](const WindowPoint& p, const std::string& why) {
    throw in::LimitError("window: the sweep point gate " + number_text(p.gate_v) + " V, bit line " +
                         number_text(p.bl_v) + " V, " + number_text(p.width_ns) +
                         " ns is refused: " + why +
                         "; nothing was sent: narrow the sweep (--gate-v, --bl-v, --width-ns)");
  };
  for (const auto& p : points_) {
    try {
      in::check_station_limits(in::PulseSpec{p.gate_v, p.bl_v, p.width_ns}, station);
    } catch (const in::LimitError& e) {
      refuse(p, e.what());
    }
    const double icc = board_icc_ua(levels_, p.gate_v);
    if (icc > station.max_compliance_ua) {
      refuse(p, "its compliance current " + number_text(icc) +
                    " uA exceeds max_compliance_ua = " + number_text(station.max_compliance_ua) +
                    " uA (station limits: " + station.station_name + ")");
    }
    if (p.gate_v > b.max_wl_voltage_v) {
      refuse(p, "gate " + number_text(p.gate_v) + " V exceeds the board's word_line_max = " +
                    number_text(b.max_wl_voltage_v) + " V (reported by identify)");
    }
    if (p.bl_v > b.max_bl_voltage_v) {
      refuse(p, "bit line " + number_text(p.bl_v) + " V exceeds the board's bit_line_max = " +
                    number_text(b.max_bl_voltage_v) + " V (reported by identify)");
    }
    if (p.width_ns < b.pulse_width_min_ns || p.width_ns > b.pulse_width_max_ns) {
      refuse(p, "width " + number_text(p.width_ns) + " ns is outside the board's range " +
                    number_text(b.pulse_width_min_ns) + " .. " + number_text(b.pulse_width_max_ns) +
                    " ns (reported by identify)");
    }
  }
  if (!board.info().has(protocols::capability::kExplicitSet)) {
    throw in::BoardError("window: the board at " + board.address() +
                         " does not accept explicit SET pulses (capability EXPLICIT_SET)");
  }
}

void WindowMeasurement::start(MeasurementContext& context) {
  resolve(context.board);
  check_limits(context.board);  // before any cell is read or pulsed
  ProgramPlan plan = default_plan(options_.cells);
  plan.levels = {0};
  plan.seed = options_.seed;
  plan.formed_threshold_us = options_.formed_threshold_us;
  cells_ = choose_formed_cells(context.board, plan);
  context.log("window: " + std::to_string(cells_.cells.size()) + " cells, " +
              std::to_string(points_.size()) + " sweep points (" + std::to_string(gates_.size()) +
              " gate x " + std::to_string(bls_.size()) + " bit-line x " +
              std::to_string(widths_.size()) +
              " width); switched at >= " + number_text(threshold_us_) + " uS");
  reset_us_.assign(points_.size(), std::vector<double>(cells_.cells.size(), kNaN));
  set_us_ = reset_us_;
  next_point_ = 0;
}

void WindowMeasurement::restore(const json& state, MeasurementContext& context) {
  resolve(context.board);
  cells_ = programmed_cells_from_json(state.at("cells"));
  next_point_ = state.at("next_point").get<std::size_t>();
  reset_us_.assign(points_.size(), std::vector<double>(cells_.cells.size(), kNaN));
  set_us_ = reset_us_;
  for (std::size_t k = 0; k < next_point_ && k < points_.size(); ++k) {
    reset_us_[k] = state.at("reset_us").at(k).get<std::vector<double>>();
    set_us_[k] = state.at("set_us").at(k).get<std::vector<double>>();
  }
}

json WindowMeasurement::progress_json() const {
  json r = json::array(), s = json::array();
  for (std::size_t k = 0; k < next_point_; ++k) {
    r.push_back(reset_us_[k]);
    s.push_back(set_us_[k]);
  }
  return {{"cells", to_json(cells_)}, {"next_point", next_point_}, {"reset_us", r}, {"set_us", s}};
}

void WindowMeasurement::run_batch(MeasurementContext& context) {
  const auto cells = cell_list(cells_);
  const WindowPoint& p = points_[next_point_];
  context.board.reset(cells);  // the settings' RESET pulse
  const auto after_reset = context.board.read(cells);
  context.board.set_explicit(cells, in::PulseSpec{p.gate_v, p.bl_v, p.width_ns});
  const auto after_set = context.board.read(cells);
  for (std::size_t c = 0; c < cells.size(); ++c) {
    reset_us_[next_point_][c] = after_reset[c].conductance_us;
    set_us_[next_point_][c] = after_set[c].conductance_us;
  }
  ++next_point_;
}

bool WindowMeasurement::valid(std::size_t k, std::size_t c) const {
  return reset_us_[k][c] < threshold_us_ && std::isfinite(set_us_[k][c]);
}

bool WindowMeasurement::switched(std::size_t k, std::size_t c) const {
  return valid(k, c) && set_us_[k][c] >= threshold_us_;
}

// ---------------------------------------------------------------------------------------------
// Statistics, fits and files

namespace {

// The curve through `points` (x each) of G after SET of the cells `keep` says, by level_curve.
template <class Keep>
LevelCurve curve_of(const std::vector<std::size_t>& points, const std::vector<double>& x,
                    const std::vector<std::vector<double>>& set_us, std::size_t cells,
                    const Keep& keep) {
  std::vector<std::vector<double>> g(points.size(), std::vector<double>(cells, kNaN));
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (std::size_t c = 0; c < cells; ++c) {
      if (keep(points[i], c)) g[i][c] = set_us[points[i]][c];
    }
  }
  return level_curve(0, std::vector<int>(cells, 0), x, g, points.size());
}

}  // namespace

std::vector<WindowMeasurement::PointStats> WindowMeasurement::point_stats() const {
  const std::size_t n = cells_.cells.size(), done = next_point_;
  std::vector<PointStats> stats(done);
  for (std::size_t k = 0; k < done; ++k) {
    auto& s = stats[k];
    const auto all =
        curve_of({k}, {0.0}, set_us_, n, [&](std::size_t p, std::size_t c) { return valid(p, c); });
    for (std::size_t c = 0; c < n; ++c) {
      s.valid += valid(k, c);
      s.switched += switched(k, c);
    }
    if (!all.x.empty()) {
      s.median_us = all.median[0];
      s.p10_us = all.low[0];
      s.p90_us = all.high[0];
    }
  }
  return stats;
}

// Per (amplitude, width) G against gate and I_CC; per (gate, width) the S-curve.
std::vector<std::pair<std::string, LevelPlot>> WindowMeasurement::plots(
    const MeasurementRecord& record) const {
  const std::size_t n = cells_.cells.size(), done = next_point_;
  const std::vector<PointStats> stats = point_stats();
  std::vector<std::pair<std::string, LevelPlot>> out;
  const std::string who =
      record.board.serial + ", chip " + record.chip_id + ", " + std::to_string(n) + " cells";
  std::map<std::pair<double, double>, std::vector<std::size_t>> by_pulse, by_gate;
  for (std::size_t k = 0; k < done; ++k) {
    by_pulse[{points_[k].bl_v, points_[k].width_ns}].push_back(k);
    by_gate[{points_[k].gate_v, points_[k].width_ns}].push_back(k);
  }
  if (gates_.size() >= 2) {
    LevelPlot vs_gate, vs_icc;
    vs_gate.title = "Programming window: " + who;
    vs_icc.title = vs_gate.title;
    vs_gate.x_label = "SET gate (word-line) voltage V_{G} (V)";
    vs_icc.x_label = "Compliance current I_{CC} (µA)";
    vs_gate.y_label = vs_icc.y_label = "Conductance after SET G (µS), median and 10-90 %";
    vs_gate.log_y = vs_icc.log_y = vs_icc.log_x = true;
    vs_gate.key_title = vs_icc.key_title = "SET pulse";
    int colour = 1;
    for (const auto& [pulse, pts] : by_pulse) {
      std::vector<double> x, x_icc;
      for (std::size_t k : pts) {
        x.push_back(points_[k].gate_v);
        x_icc.push_back(board_icc_ua(levels_, points_[k].gate_v));
      }
      auto keep = [&](std::size_t p, std::size_t c) { return valid(p, c); };
      LevelCurve curve = curve_of(pts, x, set_us_, n, keep);
      curve.level = colour++;
      curve.label = number_text(pulse.first) + " V, " + number_text(pulse.second) + " ns";
      LevelCurve icc_curve = curve_of(pts, x_icc, set_us_, n, keep);
      icc_curve.level = curve.level;
      icc_curve.label = curve.label;
      // G = I_CC / 0.5 V, the rule of thumb of docs/calibration.md, as the thin line.
      for (double i : x_icc) {
        if (i <= 0) continue;
        icc_curve.fit_x.push_back(i);
        icc_curve.fit_y.push_back(i / 0.5);
      }
      vs_gate.curves.push_back(std::move(curve));
      vs_icc.curves.push_back(std::move(icc_curve));
    }
    out.emplace_back("window.png", std::move(vs_gate));
    out.emplace_back("window_icc.png", std::move(vs_icc));
  }
  if (bls_.size() >= 2) {
    LevelPlot plot;
    plot.title = "SET S-curve: " + who;
    plot.x_label = "SET bit-line amplitude V_{BL} (V)";
    plot.y_label = "Switched fraction (1)";
    plot.key_title = "Gate, width";
    int colour = 1;
    for (const auto& [gw, pts] : by_gate) {
      LevelCurve curve;
      curve.level = colour++;
      curve.label = number_text(gw.first) + " V, " + number_text(gw.second) + " ns";
      std::vector<double> v;
      std::vector<std::size_t> k, total;
      for (std::size_t p : pts) {
        if (!(stats[p].valid > 0)) continue;
        curve.x.push_back(points_[p].bl_v);
        curve.median.push_back(stats[p].fraction());
        v.push_back(points_[p].bl_v);
        k.push_back(stats[p].switched);
        total.push_back(stats[p].valid);
      }
      if (const auto fit = fit_s_curve(v, k, total)) {
        for (int i = 0; i <= 200; ++i) {
          const double x = v.front() + (v.back() - v.front()) * i / 200.0;
          curve.fit_x.push_back(x);
          curve.fit_y.push_back(set_switch_probability(x, fit->v50_v, fit->transition_v));
        }
      }
      plot.curves.push_back(std::move(curve));
    }
    out.emplace_back("window_scurve.png", std::move(plot));
  }

  return out;
}

std::optional<LevelPlot> WindowMeasurement::live_plot(const MeasurementRecord& record) const {
  for (auto& [png, plot] : plots(record)) {
    if (!plot.curves.empty()) return std::move(plot);
  }
  return std::nullopt;
}

json WindowMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                      std::string& plot_error) const {
  const std::size_t n = cells_.cells.size(), done = next_point_;
  const std::vector<PointStats> stats = point_stats();

  // The HDF5 file.
  {
    util::H5File h5(dir / "window.h5");
    write_record_attributes(h5, record);
    std::vector<std::uint32_t> index(done);
    std::vector<double> gate(done), icc(done), bl(done), width(done), fraction(done);
    for (std::size_t k = 0; k < done; ++k) {
      index[k] = static_cast<std::uint32_t>(k);
      gate[k] = points_[k].gate_v;
      icc[k] = board_icc_ua(levels_, points_[k].gate_v);
      bl[k] = points_[k].bl_v;
      width[k] = points_[k].width_ns;
      fraction[k] = stats[k].fraction();
    }
    h5.write_vector("point", index, "index of the sweep point (gate, bit line, width: *_by_point)");
    h5.set_scale("point", "point");
    h5.write_vector("gate_voltage_v", gate, "V, SET word-line (gate) voltage of the point");
    h5.write_vector("icc_ua", icc, "uA, compliance current of the gate (board level table)");
    h5.write_vector("bl_voltage_v", bl, "V, SET bit-line amplitude of the point");
    h5.write_vector("pulse_width_ns", width, "ns, SET pulse width of the point");
    for (const char* name : {"gate_voltage_v", "icc_ua", "bl_voltage_v", "pulse_width_ns"}) {
      h5.set_scale(name, name);
    }
    write_cell_table(h5, cells_, "uS, unused (the cells are not programmed to a level)");
    std::vector<double> g_reset(n * done), g_set(n * done);
    for (std::size_t c = 0; c < n; ++c) {
      for (std::size_t k = 0; k < done; ++k) {
        g_reset[c * done + k] = reset_us_[k][c];
        g_set[c * done + k] = set_us_[k][c];
      }
    }
    h5.write_dataset("conductance_us", {n, done}, g_set,
                     "uS, read right after the point's SET pulse, at the board's read voltage");
    h5.write_dataset("reset_conductance_us", {n, done}, g_reset,
                     "uS, read after the point's RESET (before its SET)");
    h5.write_vector("switched_fraction", fraction,
                    "1, switched cells / cells below the switched threshold after RESET");
    for (const char* name : {"conductance_us", "reset_conductance_us"}) {
      h5.attach_scale(name, "cell", 0);
      for (const char* scale :
           {"point", "gate_voltage_v", "icc_ua", "bl_voltage_v", "pulse_width_ns"}) {
        h5.attach_scale(name, scale, 1);
      }
    }
    h5.attach_scale("switched_fraction", "point", 0);
    h5.number_attribute("/", "switched_threshold_us", threshold_us_);
    h5.string_attribute("/", "calibration", calibration_json().dump());
    h5.commit();
  }
  // The CSV: one row per cell and point.
  {
    util::CsvWriter csv(csv_header_lines(record),
                        {"cell", "row", "col", "point", "gate_voltage_v", "icc_ua", "bl_voltage_v",
                         "pulse_width_ns", "reset_conductance_us", "conductance_us", "switched"});
    for (std::size_t c = 0; c < n; ++c) {
      const auto& cell = cells_.cells[c].cell;
      for (std::size_t k = 0; k < done; ++k) {
        const auto& p = points_[k];
        csv.integer(c).integer(cell.row).integer(cell.col).integer(k);
        csv.number(p.gate_v, "%.4f").number(board_icc_ua(levels_, p.gate_v), "%.3f");
        csv.number(p.bl_v, "%.4f").number(p.width_ns, "%.1f");
        csv.number(reset_us_[k][c], "%.4f").number(set_us_[k][c], "%.4f");
        csv.integer(switched(k, c) ? 1 : 0).end_row();
      }
    }
    common::write_file_atomically(dir / "window.csv", csv.str());
  }

  // The plots, each drawn if it has a curve.
  std::vector<std::string> files = {"window.h5", "window.csv"};
  for (const auto& [png, plot] : plots(record)) {
    if (plot.curves.empty()) continue;
    const std::string error = plot_levels(plot, dir / png);
    if (error.empty()) {
      files.push_back(png);
    } else if (plot_error.empty()) {
      plot_error = error;
    }
  }

  json summary = json::array();
  for (std::size_t k = 0; k < done; ++k) {
    const auto& s = stats[k];
    summary.push_back({{"gate_voltage_v", points_[k].gate_v},
                       {"icc_ua", board_icc_ua(levels_, points_[k].gate_v)},
                       {"bl_voltage_v", points_[k].bl_v},
                       {"pulse_width_ns", points_[k].width_ns},
                       {"cells", s.valid},
                       {"switched_fraction", s.fraction()},
                       {"median_us", s.median_us},
                       {"p10_us", s.p10_us},
                       {"p90_us", s.p90_us}});
  }
  return {{"files", files},
          {"cells", n},
          {"points_done", done},
          {"points_planned", points_.size()},
          {"switched_threshold_us", threshold_us_},
          {"reference_pulse",
           {{"gate_voltage_v", reference_gate_v_},
            {"bl_voltage_v", reference_bl_v_},
            {"pulse_width_ns", reference_width_ns_}}},
          {"points", summary},
          {"calibration", calibration_json()}};
}

json WindowMeasurement::calibration_json() const {
  json cal = json::object();
  const std::size_t n = cells_.cells.size(), done = next_point_;
  const auto param = [](double value, std::optional<double> se, bool identifiable,
                        const std::string& note) {
    return json{{"value", value},
                {"standard_error", se ? json(*se) : json(nullptr)},
                {"identifiable", identifiable},
                {"note", note}};
  };
  const auto counts = [&](std::size_t k) {
    std::size_t v = 0, s = 0;
    for (std::size_t c = 0; c < n; ++c) {
      v += valid(k, c);
      s += switched(k, c);
    }
    return std::pair{s, v};
  };
  const auto same = [](double a, double b) { return std::fabs(a - b) < 1e-9; };

  // 1. The gate -> median G table at the reference amplitude and width.
  std::vector<std::size_t> gate_points;
  for (std::size_t k = 0; k < done; ++k) {
    const auto [s, v] = counts(k);
    if (same(points_[k].bl_v, reference_bl_v_) && same(points_[k].width_ns, reference_width_ns_) &&
        s >= 3 && 2 * s >= v) {
      gate_points.push_back(k);
    }
  }
  std::sort(gate_points.begin(), gate_points.end(),
            [&](std::size_t a, std::size_t b) { return points_[a].gate_v < points_[b].gate_v; });
  if (gate_points.size() >= 2) {
    std::vector<double> g, median, sigma;
    for (std::size_t k : gate_points) {
      const auto c = curve_of({k}, {0.0}, set_us_, n,
                              [&](std::size_t p, std::size_t cell) { return switched(p, cell); });
      g.push_back(points_[k].gate_v);
      median.push_back(c.median[0]);
      sigma.push_back((c.high[0] - c.low[0]) / 2.5631);  // 10-90 % of a normal: 2.5631 sigma
    }
    json table = json::array();
    for (std::size_t l = 1; l < levels_.size(); ++l) {
      const double gl = levels_[l].gate_voltage_v;
      if (gl < g.front() - 1e-9 || gl > g.back() + 1e-9) continue;
      std::size_t i = 1;
      while (i + 1 < g.size() && gl > g[i]) ++i;
      const double f = std::clamp((gl - g[i - 1]) / (g[i] - g[i - 1]), 0.0, 1.0);
      table.push_back({{"level", l},
                       {"gate_voltage_v", gl},
                       {"icc_ua", levels_[l].icc_ua},
                       {"median_conductance_us", median[i - 1] + f * (median[i] - median[i - 1])},
                       {"c2c_sigma_us", sigma[i - 1] + f * (sigma[i] - sigma[i - 1])}});
    }
    if (!table.empty()) {
      cal["/hcs_levels"] = param(
          0, std::nullopt, table.size() >= 2,
          "median G of the switched cells after one SET at " + number_text(reference_bl_v_) +
              " V, " + number_text(reference_width_ns_) +
              " ns, at the gate voltages of the board's level table inside the measured window " +
              number_text(g.front()) + " .. " + number_text(g.back()) +
              " V (linear between measured gates); icc_ua from the board's level table; "
              "c2c_sigma_us is the spread over cells (10-90 % / 2.563): cycle-to-cycle, "
              "device-to-device and read noise together, an upper bound");
      cal["/hcs_levels"]["value"] = table;
    }
  }

  // 2. The S-curves at the reference gate, one per width.
  std::vector<SCurveFit> curves;
  for (double w : widths_) {
    std::vector<double> v;
    std::vector<std::size_t> k, total;
    for (std::size_t p = 0; p < done; ++p) {
      if (!same(points_[p].gate_v, reference_gate_v_) || !same(points_[p].width_ns, w)) continue;
      const auto [s, valid_cells] = counts(p);
      if (valid_cells == 0) continue;
      v.push_back(points_[p].bl_v);
      k.push_back(s);
      total.push_back(valid_cells);
    }
    if (auto fit = fit_s_curve(v, k, total)) {
      fit->gate_v = reference_gate_v_;
      fit->width_ns = w;
      curves.push_back(*fit);
    }
  }
  const SCurveFit* reference = nullptr;
  for (const auto& c : curves) {
    if (same(c.width_ns, reference_width_ns_)) reference = &c;
  }
  if (reference) {
    const std::string at = " at " + number_text(reference->width_ns) + " ns, gate " +
                           number_text(reference->gate_v) +
                           " V (the calibration's reference_width_ns must be this width)";
    cal["/switching/set_threshold_bl_v"] =
        param(reference->threshold_v(), reference->threshold_se_v, reference->identifiable,
              "V_50 + transition / 2 of the SET S-curve (maximum likelihood)" + at);
    cal["/switching/set_transition_v"] =
        param(reference->transition_v, reference->transition_se_v, reference->identifiable,
              "width of the SET S-curve below its 100 % point" + at);

    // 3. The over-drive slope: mean G of the switched cells against amplitudes at or above the
    // threshold (every cell switches there), weighted least squares.
    std::vector<double> x, y, w;
    for (std::size_t p = 0; p < done; ++p) {
      if (!same(points_[p].gate_v, reference_gate_v_) ||
          !same(points_[p].width_ns, reference_width_ns_) ||
          points_[p].bl_v < reference->threshold_v()) {
        continue;
      }
      double sum = 0, sum2 = 0, m = 0;
      for (std::size_t c = 0; c < n; ++c) {
        if (!switched(p, c)) continue;
        sum += set_us_[p][c];
        sum2 += set_us_[p][c] * set_us_[p][c];
        m += 1;
      }
      if (m < 3) continue;
      const double mean = sum / m, var = std::max(1e-12, (sum2 - m * mean * mean) / (m - 1));
      x.push_back(points_[p].bl_v);
      y.push_back(mean);
      w.push_back(m / var);
    }
    if (x.size() >= 2 &&
        *std::max_element(x.begin(), x.end()) > *std::min_element(x.begin(), x.end()) + 1e-6) {
      double sw = 0, sx = 0, sy = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        sw += w[i];
        sx += w[i] * x[i];
        sy += w[i] * y[i];
      }
      const double mx = sx / sw, my = sy / sw;
      double sxx = 0, sxy = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        sxx += w[i] * (x[i] - mx) * (x[i] - mx);
        sxy += w[i] * (x[i] - mx) * (y[i] - my);
      }
      const double slope = sxy / sxx;
      double chi2 = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double r = y[i] - my - slope * (x[i] - mx);
        chi2 += w[i] * r * r;
      }
      const double dof = std::max(1.0, static_cast<double>(x.size()) - 2);
      const double slope_se = std::sqrt(std::max(1.0, chi2 / dof) / sxx);
      // Relative to the mean G at the reference amplitude (the settings' SET amplitude).
      const double g_ref = my + slope * (reference_bl_v_ - mx);
      const double rel = slope / g_ref, rel_se = slope_se / g_ref;
      cal["/switching/set_overdrive_rel_per_v"] =
          param(rel, rel_se, x.size() >= 3 && std::fabs(rel) > 2 * rel_se,
                "slope of the mean G after SET against amplitude, " + number_text(x.front()) +
                    " .. " + number_text(x.back()) +
                    " V (at and above the threshold), relative "
                    "to the mean at " +
                    number_text(reference_bl_v_) +
                    " V (the reference "
                    "amplitude the calibration's set_reference_bl_v must equal)");
    }
  }

  // 4. The width trade-off: V_50 against log10(width).
  if (curves.size() >= 2) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0, sw = 0;
    bool all_se = true;
    for (const auto& c : curves) {
      const double x = std::log10(c.width_ns);
      const double wgt = c.v50_se_v ? 1.0 / (*c.v50_se_v * *c.v50_se_v) : 1.0;
      all_se = all_se && c.v50_se_v.has_value() && c.identifiable;
      sw += wgt;
      sx += wgt * x;
      sy += wgt * c.v50_v;
      sxx += wgt * x * x;
      sxy += wgt * x * c.v50_v;
    }
    const double d = sw * sxx - sx * sx;
    if (d > 0) {
      const double slope = (sw * sxy - sx * sy) / d;
      std::optional<double> se;
      if (all_se) se = std::sqrt(sw / d);
      cal["/switching/width_v_per_decade"] =
          param(-slope, se, all_se,
                "fall of the S-curve's V_50 per decade of SET width over " +
                    std::to_string(curves.size()) + " widths");
    }
  }
  return cal;
}

}  // namespace metaplast::bench
