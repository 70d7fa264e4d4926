#include "app/bench/retention.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "app/bench/level_plot.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
namespace in = metaplast::instruments;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options

std::vector<double> retention_times(const RetentionOptions& o) {
  if (!o.times_s.empty()) {
    auto t = o.times_s;
    std::sort(t.begin(), t.end());
    return t;
  }
  std::vector<double> t;
  if (o.points == 1) return {o.start_s};
  for (std::size_t i = 0; i < o.points; ++i) {
    const double f = static_cast<double>(i) / static_cast<double>(o.points - 1);
    t.push_back(o.start_s * std::pow(o.stop_s / o.start_s, f));
  }
  return t;
}

void check_retention_options(const RetentionOptions& o) {
  const ProgramPlan& p = o.programming;
  if (p.cells < 1 || p.cells > static_cast<std::size_t>(kMaxRetentionCells)) {
    throw OptionError("cells", "must be in 1.." + std::to_string(kMaxRetentionCells) + ", got " +
                                   std::to_string(p.cells));
  }
  for (int l : p.levels) {
    if (l < 0 || l > 15) {
      throw OptionError("levels", "levels are 0 (LCS) .. 15, got " + std::to_string(l));
    }
  }
  if (!o.times_s.empty()) {
    if (o.times_s.size() > static_cast<std::size_t>(kMaxRetentionPoints)) {
      throw OptionError("times", "at most " + std::to_string(kMaxRetentionPoints) + " times");
    }
    for (double t : o.times_s) {
      if (!(t > 0) || !std::isfinite(t) || t > 1e8) {
        throw OptionError("times", "read times are seconds after programming in (0, 1e8]");
      }
    }
  } else {
    if (!(o.start_s > 0) || !std::isfinite(o.start_s) || o.start_s > 1e8) {
      throw OptionError("start", "the first read time must be in (0, 1e8] s");
    }
    if (!(o.stop_s >= o.start_s) || !std::isfinite(o.stop_s) || o.stop_s > 1e8) {
      throw OptionError("stop", "the last read time must be at least --start and at most 1e8 s");
    }
    if (o.points < 1 || o.points > static_cast<std::size_t>(kMaxRetentionPoints)) {
      throw OptionError("points", "must be in 1.." + std::to_string(kMaxRetentionPoints));
    }
  }
  check_programming_options(p, kMaxRetentionCells);
}

json to_json(const RetentionOptions& o) {
  json j = to_json(o.programming);
  j["times"] = o.times_s;
  j["start"] = o.start_s;
  j["stop"] = o.stop_s;
  j["points"] = o.points;
  return j;
}

RetentionOptions retention_options_from_json(const json& step) {
  json_only_keys(step, {"cells", "levels", "times", "start", "stop", "points", "seed", "band-us",
                        "max-attempts", "formed-threshold-us", "chunk-cells"});
  RetentionOptions o;
  ProgramPlan& p = o.programming;
  if (step.contains("cells")) p.cells = json_integer(step, "cells", 1, kMaxRetentionCells);
  if (step.contains("levels")) p.levels = json_integers(step, "levels", 0, 15);
  if (step.contains("times")) o.times_s = json_numbers(step, "times");
  if (step.contains("start")) o.start_s = json_number(step, "start", 1e-6, 1e8);
  if (step.contains("stop")) o.stop_s = json_number(step, "stop", 1e-6, 1e8);
  if (step.contains("points")) o.points = json_integer(step, "points", 1, kMaxRetentionPoints);
  read_programming_options(step, kMaxRetentionCells, p);
  check_retention_options(o);
  return o;
}

// ---------------------------------------------------------------------------------------------
// The fit

namespace {

// Samples pooled by (time point, programming chunk): their ages are nearly equal.
struct Group {
  double age_s = 0, ratio = 0, weight = 0;
};

double model(double t, double d, double m, double tau, double tref) {
  return 1.0 - d * std::log10(1.0 + t / tref) + m * (1.0 - std::exp(-t / tau));
}

struct LinearFit {
  double d = 0, m = 0, chi2 = std::numeric_limits<double>::infinity();
};

// Weighted least squares of y - 1 = -d A + m B for fixed tau and tref.
LinearFit fit_linear(const std::vector<Group>& g, double tau, double tref) {
  double saa = 0, sab = 0, sbb = 0, say = 0, sby = 0;
  for (const auto& x : g) {
    const double a = -std::log10(1.0 + x.age_s / tref);
    const double b = 1.0 - std::exp(-x.age_s / tau);
    const double y = x.ratio - 1.0;
    saa += x.weight * a * a;
    sab += x.weight * a * b;
    sbb += x.weight * b * b;
    say += x.weight * a * y;
    sby += x.weight * b * y;
  }
  const double det = saa * sbb - sab * sab;
  LinearFit f;
  if (!(std::fabs(det) > 1e-300)) return f;
  f.d = (say * sbb - sby * sab) / det;
  f.m = (saa * sby - sab * say) / det;
  f.chi2 = 0;
  for (const auto& x : g) {
    const double r = x.ratio - model(x.age_s, f.d, f.m, tau, tref);
    f.chi2 += x.weight * r * r;
  }
  return f;
}

// Inverse of a small symmetric positive matrix (Gauss-Jordan); false when singular.
bool invert(std::vector<std::vector<double>>& a) {
  const std::size_t n = a.size();
  std::vector<std::vector<double>> inv(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) inv[i][i] = 1.0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r) {
      if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
    }
    if (!(std::fabs(a[p][c]) > 1e-300)) return false;
    std::swap(a[p], a[c]);
    std::swap(inv[p], inv[c]);
    const double d = a[c][c];
    for (std::size_t k = 0; k < n; ++k) {
      a[c][k] /= d;
      inv[c][k] /= d;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c];
      for (std::size_t k = 0; k < n; ++k) {
        a[r][k] -= f * a[c][k];
        inv[r][k] -= f * inv[c][k];
      }
    }
  }
  a = inv;
  return true;
}

}  // namespace

RelaxationFit fit_relaxation(const std::vector<std::vector<double>>& ratios,
                             const std::vector<std::vector<double>>& ages_s) {
  RelaxationFit fit;
  // Pool by point and (rounded log) age: one group per point and distinct age.
  std::map<std::pair<std::size_t, long>, std::vector<std::pair<double, double>>> pools;
  std::size_t points = 0;
  for (std::size_t c = 0; c < ratios.size(); ++c) {
    bool any = false;
    for (std::size_t k = 0; k < ratios[c].size(); ++k) {
      const double r = ratios[c][k], t = ages_s[c][k];
      if (!std::isfinite(r) || !(t > 0)) continue;
      pools[{k, std::lround(std::log10(t) * 200)}].push_back({t, r});
      points = std::max(points, k + 1);
      any = true;
    }
    fit.cells += any;
  }
  fit.points = points;
  if (points < 5 || fit.cells < 2) {
    throw std::invalid_argument("retention fit: needs at least 5 time points and 2 cells, got " +
                                std::to_string(points) + " and " + std::to_string(fit.cells));
  }
  std::vector<Group> groups;
  double t_min = std::numeric_limits<double>::infinity(), t_max = 0;
  for (const auto& [key, samples] : pools) {
    double st = 0, sr = 0, srr = 0;
    for (const auto& [t, r] : samples) {
      st += t;
      sr += r;
      srr += r * r;
    }
    const double n = static_cast<double>(samples.size());
    const double mean = sr / n;
    // The spread of the cells' ratios, floored (a group of one cell, or a noiseless model).
    const double var = std::max(n > 1 ? (srr - n * mean * mean) / (n - 1) : 0.0, 1e-8);
    groups.push_back({st / n, mean, n / var});
    t_min = std::min(t_min, st / n);
    t_max = std::max(t_max, st / n);
  }

  // Grid over log10(tau) and log10(tref) (d and m linear for each), then a finer grid.
  double best_chi2 = std::numeric_limits<double>::infinity(), l_tau = 0, l_ref = 0;
  const auto search = [&](double tau_lo, double tau_hi, double ref_lo, double ref_hi, double step) {
    double bt = l_tau, br = l_ref;
    for (double lt = tau_lo; lt <= tau_hi + 1e-12; lt += step) {
      for (double lr = ref_lo; lr <= ref_hi + 1e-12; lr += step) {
        const LinearFit f = fit_linear(groups, std::pow(10.0, lt), std::pow(10.0, lr));
        if (f.chi2 < best_chi2) {
          best_chi2 = f.chi2;
          bt = lt;
          br = lr;
        }
      }
    }
    l_tau = bt;
    l_ref = br;
  };
  const double lmin = std::log10(t_min), lmax = std::log10(t_max);
  search(lmin - 2, lmax + 1, -6, lmax, 0.05);
  search(l_tau - 0.06, l_tau + 0.06, l_ref - 0.06, l_ref + 0.06, 0.002);
  const double tau = std::pow(10.0, l_tau), tref = std::pow(10.0, l_ref);
  const LinearFit best = fit_linear(groups, tau, tref);

  // Standard errors from the weighted Jacobian in (d, m, log10 tau, log10 tref), scaled by the
  // reduced chi-square when it exceeds 1 (the model misses something: say so in the errors).
  const std::vector<double> p0{best.d, best.m, l_tau, l_ref};
  const auto f_at = [](const std::vector<double>& p, double t) {
    return model(t, p[0], p[1], std::pow(10.0, p[2]), std::pow(10.0, p[3]));
  };
  std::vector<std::vector<double>> jtj(4, std::vector<double>(4, 0.0));
  for (const auto& g : groups) {
    std::vector<double> grad(4);
    for (std::size_t i = 0; i < 4; ++i) {
      auto hi = p0, lo = p0;
      const double h = i < 2 ? 1e-6 : 1e-4;
      hi[i] += h;
      lo[i] -= h;
      grad[i] = (f_at(hi, g.age_s) - f_at(lo, g.age_s)) / (2 * h);
    }
    for (std::size_t i = 0; i < 4; ++i) {
      for (std::size_t j = 0; j < 4; ++j) jtj[i][j] += g.weight * grad[i] * grad[j];
    }
  }
  const double dof = std::max<double>(1.0, static_cast<double>(groups.size()) - 4.0);
  const double scale = std::max(1.0, best.chi2 / dof);
  std::vector<double> se(4, std::numeric_limits<double>::infinity());
  if (invert(jtj)) {
    for (std::size_t i = 0; i < 4; ++i) se[i] = std::sqrt(std::max(0.0, jtj[i][i] * scale));
  }
  double ss = 0, n = 0;
  for (const auto& g : groups) {
    const double r = g.ratio - model(g.age_s, best.d, best.m, tau, tref);
    ss += r * r;
    n += 1;
  }
  fit.rms_residual_rel = std::sqrt(ss / n);

  const bool tau_in_window = tau > t_min / 3 && tau < t_max * 3 && se[2] < 0.3;
  fit.drift_per_decade_rel = {best.d, se[0], se[0] < 0.5 * std::fabs(best.d)};
  fit.step_mean_rel = {best.m, se[1],
                       tau_in_window && se[1] < std::max(0.5 * std::fabs(best.m), 1e-3)};
  fit.step_time_constant_s = {tau, tau * std::log(10.0) * se[2], tau_in_window};
  fit.drift_reference_s = {tref, tref * std::log(10.0) * se[3],
                           se[3] < 0.5 && fit.drift_per_decade_rel.identifiable};

  // Step spread: the cells' ratios at the last point spread by the step (completed to
  // 1 - exp(-t/tau)) and by the read noise of that read and of G0; the noise is what two late
  // reads of the same cell differ by.
  std::vector<double> last, diff;
  const std::size_t k_last = points - 1;
  double age_last = 0;
  for (std::size_t c = 0; c < ratios.size(); ++c) {
    if (ratios[c].size() < points) continue;
    const double a = ratios[c][k_last], b = ratios[c][k_last - 1];
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    last.push_back(a);
    diff.push_back(a - b);
    age_last = std::max(age_last, ages_s[c][k_last]);
  }
  const auto variance = [](const std::vector<double>& v) {
    double s = 0, s2 = 0;
    for (double x : v) s += x;
    const double mean = s / static_cast<double>(v.size());
    for (double x : v) s2 += (x - mean) * (x - mean);
    return s2 / static_cast<double>(v.size() - 1);
  };
  if (last.size() >= 3) {
    const double noise_var = variance(diff) / 2;
    fit.read_noise_rel = std::sqrt(noise_var);
    const double done = 1.0 - std::exp(-age_last / tau);
    const double step_var = (variance(last) - 2 * noise_var) / (done * done);
    const double sigma = std::sqrt(std::max(step_var, 0.0));
    const double var_se =
        variance(last) * std::sqrt(2.0 / static_cast<double>(last.size() - 1)) / (done * done);
    fit.step_sigma_rel = {sigma, sigma > 0 ? var_se / (2 * sigma) : std::sqrt(var_se),
                          step_var > 2 * var_se && done > 0.9};
  }
  return fit;
}

// ---------------------------------------------------------------------------------------------
// The measurement

RetentionMeasurement::RetentionMeasurement(RetentionOptions options)
    : options_(std::move(options)), times_s_(retention_times(options_)) {}

void RetentionMeasurement::start(MeasurementContext& context) {
  programmed_ = choose_and_program(context.board, options_.programming);
  std::size_t passed = 0;
  for (const auto& c : programmed_.cells) passed += c.passed;
  context.log("retention: programmed " + std::to_string(programmed_.cells.size()) +
              " cells to levels " + json(programmed_.levels).dump() + " (" +
              std::to_string(passed) + " in band); reading at " + std::to_string(times_s_.size()) +
              " times from " + json(times_s_.front()).dump() + " s to " +
              json(times_s_.back()).dump() + " s on the board's clock");
  conductance_us_.assign(times_s_.size(), std::vector<double>(programmed_.cells.size(), kNaN));
  age_s_ = conductance_us_;
  next_point_ = 0;
}

void RetentionMeasurement::restore(const json& state, MeasurementContext& context) {
  programmed_ = programmed_cells_from_json(state.at("programmed"));
  if (context.board.info().boot_id != programmed_.boot_id) {
    throw std::invalid_argument(
        "the board was restarted since the cells were programmed (boot id changed): the time "
        "since programming is unknown, so this retention measurement cannot continue; start a "
        "new one with --out");
  }
  next_point_ = state.at("next_point").get<std::size_t>();
  conductance_us_.assign(times_s_.size(), std::vector<double>(programmed_.cells.size(), kNaN));
  age_s_ = conductance_us_;
  const json& g = state.at("conductance_us");
  const json& a = state.at("age_s");
  for (std::size_t k = 0; k < next_point_ && k < times_s_.size(); ++k) {
    for (std::size_t c = 0; c < programmed_.cells.size(); ++c) {
      conductance_us_[k][c] = g.at(k).at(c).get<double>();
      age_s_[k][c] = a.at(k).at(c).get<double>();
    }
  }
}

json RetentionMeasurement::progress_json() const {
  json g = json::array(), a = json::array();
  for (std::size_t k = 0; k < next_point_; ++k) {
    g.push_back(conductance_us_[k]);
    a.push_back(age_s_[k]);
  }
  return {{"programmed", to_json(programmed_)},
          {"next_point", next_point_},
          {"conductance_us", g},
          {"age_s", a}};
}

bool RetentionMeasurement::done() const { return next_point_ >= times_s_.size(); }
std::size_t RetentionMeasurement::batches_done() const { return next_point_; }

void RetentionMeasurement::run_batch(MeasurementContext& context) {
  const double t0_ms = programmed_.chunk_end_ms.empty() ? 0 : programmed_.chunk_end_ms.back();
  if (!wait_until_board_time(context, t0_ms + 1000.0 * times_s_[next_point_])) return;
  const auto wall = std::chrono::steady_clock::now();
  const double before_ms = context.board.uptime_ms();
  // One batched read of every cell (split into frames by the driver, never a round trip per cell).
  const auto readings = context.board.read(cell_list(programmed_));
  const double after_ms = context.board.uptime_ms();
  board_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
  const double read_ms = 0.5 * (before_ms + after_ms);
  for (std::size_t c = 0; c < programmed_.cells.size(); ++c) {
    conductance_us_[next_point_][c] = readings[c].conductance_us;
    age_s_[next_point_][c] =
        (read_ms - programmed_.chunk_end_ms[programmed_.cells[c].chunk]) / 1000.0;
  }
  ++next_point_;
}

std::optional<RelaxationFit> RetentionMeasurement::fit() const {
  const std::size_t n = programmed_.cells.size();
  std::vector<std::vector<double>> ratios(n), ages(n);
  for (std::size_t c = 0; c < n; ++c) {
    const double g0 = programmed_.cells[c].verify_us;
    for (std::size_t k = 0; k < next_point_; ++k) {
      ratios[c].push_back(g0 > 0 && programmed_.cells[c].passed ? conductance_us_[k][c] / g0
                                                                : kNaN);
      ages[c].push_back(age_s_[k][c]);
    }
  }
  try {
    return fit_relaxation(ratios, ages);
  } catch (const std::invalid_argument&) {
    return std::nullopt;  // too few points yet (an interrupted run)
  }
}

namespace {

json parameter_json(const FittedParameter& p, const char* unit) {
  return {{"value", p.value},
          {"standard_error", p.standard_error},
          {"identifiable", p.identifiable},
          {"unit", unit}};
}

}  // namespace

// The median G(t) per level with its 10-90 % band, and the fitted model.
LevelPlot RetentionMeasurement::level_plot(const MeasurementRecord& record,
                                           const std::optional<RelaxationFit>& fit_result) const {
  const std::size_t n = programmed_.cells.size(), k_done = next_point_;
  LevelPlot plot;
  plot.title = "Retention: " + record.board.serial + ", chip " + record.chip_id + ", " +
               std::to_string(n) + " cells";
  plot.x_label = "Time since programming t (s)";
  plot.y_label = "Conductance G (µS)";
  plot.log_x = true;
  plot.log_y = true;
  std::vector<int> cell_levels;
  for (const auto& c : programmed_.cells) cell_levels.push_back(c.level);
  for (int level : programmed_.levels) {
    LevelCurve curve = level_curve(level, cell_levels, times_s_, conductance_us_, k_done);
    std::vector<double> g0;
    for (std::size_t c = 0; c < n; ++c) {
      if (programmed_.cells[c].level == level) g0.push_back(programmed_.cells[c].verify_us);
    }
    if (fit_result && !g0.empty() && k_done > 0) {
      const double g0_median = quantile_of(g0, 0.5);
      const auto& f = *fit_result;
      for (int i = 0; i <= 60; ++i) {
        const double t =
            times_s_.front() * std::pow(times_s_[k_done - 1] / times_s_.front(), i / 60.0);
        curve.fit_x.push_back(t);
        curve.fit_y.push_back(g0_median * model(t, f.drift_per_decade_rel.value,
                                                f.step_mean_rel.value, f.step_time_constant_s.value,
                                                f.drift_reference_s.value));
      }
    }
    plot.curves.push_back(std::move(curve));
  }
  return plot;
}

std::optional<LevelPlot> RetentionMeasurement::live_plot(const MeasurementRecord& record) const {
  if (next_point_ == 0) return std::nullopt;
  return level_plot(record, fit());
}

json RetentionMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                         std::string& plot_error) const {
  const std::size_t n = programmed_.cells.size(), k_done = next_point_;
  const auto fit_result = fit();

  // HDF5: [cell][point] datasets with the cell index and the nominal times as scales.
  {
    util::H5File h5(dir / "retention.h5");
    write_record_attributes(h5, record);
    std::vector<double> times(times_s_.begin(), times_s_.begin() + static_cast<long>(k_done));
    std::vector<double> target(n);
    std::vector<std::uint8_t> passed(n);
    std::vector<std::uint32_t> attempts(n);
    std::vector<double> g(n * k_done), age(n * k_done);
    for (std::size_t c = 0; c < n; ++c) {
      const auto& p = programmed_.cells[c];
      target[c] = p.target_us;
      passed[c] = p.passed;
      attempts[c] = p.attempts;
      for (std::size_t k = 0; k < k_done; ++k) {
        g[c * k_done + k] = conductance_us_[k][c];
        age[c * k_done + k] = age_s_[k][c];
      }
    }
    h5.write_vector("time_s", times,
                    "s: nominal read time after programming (each read's own age: age_s)");
    h5.set_scale("time_s", "time since programming (s)");
    write_cell_table(h5, programmed_, "uS, last verify read (G0 of the fit)");
    h5.write_dataset("conductance_us", {n, k_done}, g, "uS, read at the board's read voltage");
    h5.write_dataset("age_s", {n, k_done}, age,
                     "s since the cell's program-and-verify chunk ended, on the board's clock");
    for (const char* name : {"conductance_us", "age_s"}) {
      h5.attach_scale(name, "cell", 0);
      h5.attach_scale(name, "time_s", 1);
    }
    h5.write_vector("cells/target_us", target, "uS, program-and-verify target of the level");
    h5.write_vector("cells/passed", passed, "1: program-and-verify ended in band");
    h5.write_vector("cells/attempts", attempts, "programming pulses spent");
    for (const char* name : {"cells/target_us", "cells/passed", "cells/attempts"}) {
      h5.attach_scale(name, "cell", 0);
    }
    h5.create_group("fit");
    h5.string_attribute("fit", "model",
                        "G(t)/G0 = 1 - drift_per_decade_rel log10(1 + t/drift_reference_s) + "
                        "step_mean_rel (1 - exp(-t/step_time_constant_s)) (docs/calibration.md)");
    if (fit_result) {
      const auto put = [&](const char* name, const FittedParameter& p) {
        h5.number_attribute("fit", name, p.value);
        h5.number_attribute("fit", std::string(name) + "_standard_error", p.standard_error);
        h5.integer_attribute("fit", std::string(name) + "_identifiable", p.identifiable);
      };
      put("step_mean_rel", fit_result->step_mean_rel);
      put("step_sigma_rel", fit_result->step_sigma_rel);
      put("step_time_constant_s", fit_result->step_time_constant_s);
      put("drift_per_decade_rel", fit_result->drift_per_decade_rel);
      put("drift_reference_s", fit_result->drift_reference_s);
    }
    h5.commit();
  }

  // CSV: one row per read.
  {
    util::CsvWriter csv(csv_header_lines(record),
                        {"cell", "row", "col", "level", "target_us", "verify_us", "passed", "point",
                         "time_s", "age_s", "conductance_us"});
    for (std::size_t c = 0; c < n; ++c) {
      const auto& p = programmed_.cells[c];
      for (std::size_t k = 0; k < k_done; ++k) {
        csv.integer(c).integer(p.cell.row).integer(p.cell.col).integer(p.level);
        csv.number(p.target_us, "%.4f").number(p.verify_us, "%.4f").integer(p.passed ? 1 : 0);
        csv.integer(k).number(times_s_[k], "%.6g").number(age_s_[k][c], "%.6g");
        csv.number(conductance_us_[k][c], "%.4f").end_row();
      }
    }
    common::write_file_atomically(dir / "retention.csv", csv.str());
  }

  plot_error = plot_levels(level_plot(record, fit_result), dir / "retention.png");

  json result = {{"files", {"retention.h5", "retention.csv", "retention.png"}},
                 {"cells", n},
                 {"levels", programmed_.levels},
                 {"time_points", k_done},
                 {"time_points_planned", times_s_.size()},
                 {"cells_formed", programmed_.formed},
                 {"cells_unformed", programmed_.unformed}};
  if (fit_result) {
    const auto& f = *fit_result;
    result["fit"] = {{"relaxation",
                      {{"step_mean_rel", parameter_json(f.step_mean_rel, "")},
                       {"step_sigma_rel", parameter_json(f.step_sigma_rel, "")},
                       {"step_time_constant_s", parameter_json(f.step_time_constant_s, "s")},
                       {"drift_per_decade_rel", parameter_json(f.drift_per_decade_rel, "")},
                       {"drift_reference_s", parameter_json(f.drift_reference_s, "s")}}},
                     {"read_noise_rel", f.read_noise_rel},
                     {"rms_residual_rel", f.rms_residual_rel},
                     {"cells", f.cells},
                     {"points", f.points}};
    const std::string how = "fit of G(t)/G0 over " + std::to_string(f.cells) + " cells at " +
                            std::to_string(f.points) + " times (docs/bench.md, Retention)";
    result["calibration"] = {
        {"/relaxation/step_mean_rel", calibration_field(f.step_mean_rel, how)},
        {"/relaxation/step_sigma_rel", calibration_field(f.step_sigma_rel, how)},
        {"/relaxation/step_time_constant_s", calibration_field(f.step_time_constant_s, how)},
        {"/relaxation/drift_per_decade_rel", calibration_field(f.drift_per_decade_rel, how)},
        {"/relaxation/drift_reference_s", calibration_field(f.drift_reference_s, how)}};
  }
  return result;
}

}  // namespace metaplast::bench
