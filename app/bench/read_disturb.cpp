#include "app/bench/read_disturb.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "app/bench/calibration_from_measurements.hpp"
#include "app/bench/level_plot.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

std::vector<std::uint64_t> read_disturb_counts(const ReadDisturbOptions& o) {
  return log_spaced_counts(o.reads, o.points);
}

void check_read_disturb_options(const ReadDisturbOptions& o) {
  const ProgramPlan& p = o.programming;
  if (p.cells < 1 || p.cells > static_cast<std::size_t>(kMaxReadDisturbCells)) {
    throw OptionError("cells", "must be in 1.." + std::to_string(kMaxReadDisturbCells));
  }
  for (int l : p.levels) {
    if (l < 0 || l > 15) throw OptionError("levels", "levels are 0 (LCS) .. 15");
  }
  if (o.reads < 2 || o.reads > static_cast<std::uint64_t>(kMaxReadDisturbReads)) {
    throw OptionError("reads", "must be in 2.." + std::to_string(kMaxReadDisturbReads));
  }
  if (o.points < 2 || o.points > 1000) throw OptionError("points", "must be in 2..1000");
  check_programming_options(p, kMaxReadDisturbCells);
  if (!(o.settle_s >= 0) || o.settle_s > 1e7) {
    throw OptionError("settle-s", "must be in [0, 1e7] s");
  }
}

json to_json(const ReadDisturbOptions& o) {
  json j = to_json(o.programming);
  j["reads"] = o.reads;
  j["points"] = o.points;
  j["settle-s"] = o.settle_s;
  return j;
}

ReadDisturbOptions read_disturb_options_from_json(const json& step) {
  json_only_keys(step, {"cells", "levels", "reads", "points", "seed", "band-us", "max-attempts",
                        "formed-threshold-us", "chunk-cells", "settle-s"});
  ReadDisturbOptions o;
  ProgramPlan& p = o.programming;
  if (step.contains("cells")) p.cells = json_integer(step, "cells", 1, kMaxReadDisturbCells);
  if (step.contains("levels")) p.levels = json_integers(step, "levels", 0, 15);
  if (step.contains("reads")) {
    o.reads = static_cast<std::uint64_t>(json_integer(step, "reads", 2, kMaxReadDisturbReads));
  }
  if (step.contains("points")) o.points = json_integer(step, "points", 2, 1000);
  read_programming_options(step, kMaxReadDisturbCells, p);
  if (step.contains("settle-s")) o.settle_s = json_number(step, "settle-s", 0, 1e7);
  check_read_disturb_options(o);
  return o;
}

namespace {

// Weighted slope through the origin of y on x (weights w); its standard error from the
// residuals (scaled by the reduced chi-square when above 1).
std::pair<double, double> slope_through_origin(const std::vector<double>& x,
                                               const std::vector<double>& y,
                                               const std::vector<double>& w) {
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxx += w[i] * x[i] * x[i];
    sxy += w[i] * x[i] * y[i];
  }
  if (!(sxx > 0)) return {kNaN, kNaN};
  const double b = sxy / sxx;
  double chi2 = 0;
  for (std::size_t i = 0; i < x.size(); ++i) chi2 += w[i] * (y[i] - b * x[i]) * (y[i] - b * x[i]);
  const double dof = std::max<double>(1.0, static_cast<double>(x.size()) - 1.0);
  return {b, std::sqrt(std::max(1.0, chi2 / dof) / sxx)};
}

// Per recorded count k >= 1: the mean over the selected cells of ln(G_k / G_first) and its
// weight (cells / variance), then the slope against n_k - n_first.
std::pair<double, double> fit_cells(const std::vector<std::uint64_t>& counts,
                                    const std::vector<std::vector<double>>& g,
                                    const std::vector<std::size_t>& cells, std::size_t points) {
  std::vector<double> x, y, w;
  for (std::size_t k = 1; k < points; ++k) {
    double s = 0, s2 = 0, n = 0;
    for (std::size_t c : cells) {
      const double a = g[0][c], b = g[k][c];
      if (!(a > 0) || !(b > 0)) continue;
      const double v = std::log(b / a);
      s += v;
      s2 += v * v;
      n += 1;
    }
    if (n < 2) continue;
    const double mean = s / n;
    const double var = std::max((s2 - n * mean * mean) / (n - 1), 1e-12);
    x.push_back(static_cast<double>(counts[k] - counts[0]));
    y.push_back(mean);
    w.push_back(n / var);
  }
  if (x.empty()) return {kNaN, kNaN};
  return slope_through_origin(x, y, w);
}

}  // namespace

ReadDisturbFit fit_read_disturb(const std::vector<std::uint64_t>& counts,
                                const std::vector<std::vector<double>>& g,
                                const std::vector<int>& levels, double read_voltage_v,
                                const devices::ReadDisturbModel& base) {
  std::size_t points = 0;
  while (points < g.size() && points < counts.size() &&
         std::any_of(g[points].begin(), g[points].end(), [](double v) { return v > 0; })) {
    ++points;
  }
  if (points < 2) {
    throw std::invalid_argument("read-disturb fit: needs at least 2 recorded read counts, got " +
                                std::to_string(points));
  }
  ReadDisturbFit fit;
  fit.read_voltage_v = read_voltage_v;
  fit.onset_voltage_v = base.onset_voltage_v;
  fit.slope_v = base.slope_v;
  std::vector<std::size_t> all(levels.size());
  for (std::size_t c = 0; c < all.size(); ++c) all[c] = c;
  const auto [b, se] = fit_cells(counts, g, all, points);
  // ln(1 + delta) = b.
  fit.delta_per_read = std::expm1(b);
  fit.standard_error = se * std::exp(b);
  fit.identifiable = std::fabs(fit.delta_per_read) > 2 * fit.standard_error;
  std::vector<int> distinct = levels;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  for (int level : distinct) {
    std::vector<std::size_t> cells;
    for (std::size_t c = 0; c < levels.size(); ++c) {
      if (levels[c] == level) cells.push_back(c);
    }
    const auto [lb, lse] = fit_cells(counts, g, cells, points);
    fit.levels.push_back({level, cells.size(), std::expm1(lb), lse * std::exp(lb)});
  }
  if (read_voltage_v > base.onset_voltage_v && base.slope_v > 0) {
    const double factor = std::expm1((read_voltage_v - base.onset_voltage_v) / base.slope_v);
    fit.rel_per_read = fit.delta_per_read / factor;
    fit.rel_per_read_standard_error = fit.standard_error / factor;
  }
  return fit;
}

ReadDisturbMeasurement::ReadDisturbMeasurement(ReadDisturbOptions options,
                                               devices::ReadDisturbModel base)
    : options_(std::move(options)), base_(base), counts_(read_disturb_counts(options_)) {}

void ReadDisturbMeasurement::start(MeasurementContext& context) {
  programmed_ = choose_and_program(context.board, options_.programming);
  context.log("read-disturb: programmed " + std::to_string(programmed_.cells.size()) +
              " cells to levels " + json(programmed_.levels).dump() + "; " +
              std::to_string(options_.reads) + " reads each at " +
              json(context.board.settings().read_voltage_v).dump() + " V");
  conductance_us_.assign(counts_.size(), std::vector<double>(programmed_.cells.size(), kNaN));
  reads_done_ = 0;
  next_point_ = 0;
  if (options_.settle_s > 0) {
    const double t0 = programmed_.chunk_end_ms.empty() ? 0 : programmed_.chunk_end_ms.back();
    wait_until_board_time(context, t0 + 1000.0 * options_.settle_s);
  }
}

void ReadDisturbMeasurement::restore(const json& state, MeasurementContext&) {
  programmed_ = programmed_cells_from_json(state.at("programmed"));
  reads_done_ = state.at("reads_done").get<std::uint64_t>();
  next_point_ = state.at("next_point").get<std::size_t>();
  conductance_us_.assign(counts_.size(), std::vector<double>(programmed_.cells.size(), kNaN));
  const json& g = state.at("conductance_us");
  for (std::size_t k = 0; k < next_point_ && k < counts_.size(); ++k) {
    for (std::size_t c = 0; c < programmed_.cells.size(); ++c) {
      conductance_us_[k][c] = g.at(k).at(c).get<double>();
    }
  }
}

json ReadDisturbMeasurement::progress_json() const {
  json g = json::array();
  for (std::size_t k = 0; k < next_point_; ++k) g.push_back(conductance_us_[k]);
  return {{"programmed", to_json(programmed_)},
          {"reads_done", reads_done_},
          {"next_point", next_point_},
          {"conductance_us", g}};
}

void ReadDisturbMeasurement::run_batch(MeasurementContext& context) {
  const auto cells = cell_list(programmed_);
  const std::uint64_t target = counts_[next_point_];
  const std::uint64_t stop_at = std::min(target, reads_done_ + kReadsPerBatch);
  while (reads_done_ < stop_at) {
    const auto readings = context.board.read(cells);  // one batched read of every cell
    ++reads_done_;
    if (reads_done_ == target) {
      for (std::size_t c = 0; c < cells.size(); ++c) {
        conductance_us_[next_point_][c] = readings[c].conductance_us;
      }
      ++next_point_;
    }
  }
}

std::optional<ReadDisturbFit> ReadDisturbMeasurement::fit(double read_voltage_v) const {
  std::vector<int> levels;
  for (const auto& c : programmed_.cells) levels.push_back(c.level);
  try {
    return fit_read_disturb(counts_, conductance_us_, levels, read_voltage_v, base_);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

// The median G per level against the read count, with the fitted drift.
LevelPlot ReadDisturbMeasurement::level_plot(const MeasurementRecord& record,
                                             const std::optional<ReadDisturbFit>& f) const {
  const std::size_t n = programmed_.cells.size(), k_done = next_point_;
  LevelPlot plot;
  plot.title = "Read disturb at " + json(record.settings.read_voltage_v).dump() +
               " V: " + record.board.serial + ", chip " + record.chip_id + ", " +
               std::to_string(n) + " cells";
  plot.x_label = "Read count n (reads of every cell)";
  plot.y_label = "Conductance G (µS)";
  plot.log_x = true;
  plot.log_y = true;
  std::vector<int> cell_levels;
  for (const auto& c : programmed_.cells) cell_levels.push_back(c.level);
  const std::vector<double> read_counts(counts_.begin(), counts_.end());
  for (int level : programmed_.levels) {
    LevelCurve curve = level_curve(level, cell_levels, read_counts, conductance_us_, k_done);
    if (f && !curve.x.empty()) {
      for (std::size_t i = 0; i < curve.x.size(); ++i) {
        curve.fit_x.push_back(curve.x[i]);
        curve.fit_y.push_back(curve.median.front() *
                              std::pow(1.0 + f->delta_per_read, curve.x[i] - curve.x.front()));
      }
    }
    plot.curves.push_back(std::move(curve));
  }
  return plot;
}

std::optional<LevelPlot> ReadDisturbMeasurement::live_plot(const MeasurementRecord& record) const {
  if (next_point_ == 0) return std::nullopt;
  return level_plot(record, fit(record.settings.read_voltage_v));
}

json ReadDisturbMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                           std::string& plot_error) const {
  const std::size_t n = programmed_.cells.size(), k_done = next_point_;
  const auto f = fit(record.settings.read_voltage_v);
  {
    util::H5File h5(dir / "read_disturb.h5");
    write_record_attributes(h5, record);
    std::vector<std::uint64_t> counts(counts_.begin(), counts_.begin() + static_cast<long>(k_done));
    std::vector<double> g(n * k_done);
    for (std::size_t c = 0; c < n; ++c) {
      for (std::size_t k = 0; k < k_done; ++k) g[c * k_done + k] = conductance_us_[k][c];
    }
    h5.write_vector("read_count", counts, "reads of every cell since programming (1 = first)");
    h5.set_scale("read_count", "read count");
    write_cell_table(h5, programmed_, "uS, last verify read");
    h5.write_dataset("conductance_us", {n, k_done}, g,
                     "uS, the read with that count, at the board's read voltage");
    h5.attach_scale("conductance_us", "cell", 0);
    h5.attach_scale("conductance_us", "read_count", 1);
    h5.create_group("fit");
    h5.string_attribute("fit", "model",
                        "G_n = G_1 (1 + delta)^(n-1); delta = rel_per_read (exp((V - "
                        "onset_voltage_v) / slope_v) - 1) (docs/calibration.md)");
    h5.number_attribute("fit", "read_voltage_v", record.settings.read_voltage_v);
    if (f) {
      h5.number_attribute("fit", "delta_per_read", f->delta_per_read);
      h5.number_attribute("fit", "delta_per_read_standard_error", f->standard_error);
      if (f->rel_per_read) {
        h5.number_attribute("fit", "rel_per_read", *f->rel_per_read);
        h5.number_attribute("fit", "rel_per_read_standard_error", *f->rel_per_read_standard_error);
        h5.number_attribute("fit", "assumed_onset_voltage_v", f->onset_voltage_v);
        h5.number_attribute("fit", "assumed_slope_v", f->slope_v);
      }
    }
    h5.commit();
  }
  {
    util::CsvWriter csv(csv_header_lines(record), {"cell", "row", "col", "level", "verify_us",
                                                   "point", "read_count", "conductance_us"});
    for (std::size_t c = 0; c < n; ++c) {
      const auto& p = programmed_.cells[c];
      for (std::size_t k = 0; k < k_done; ++k) {
        csv.integer(c).integer(p.cell.row).integer(p.cell.col).integer(p.level);
        csv.number(p.verify_us, "%.4f").integer(k).integer(counts_[k]);
        csv.number(conductance_us_[k][c], "%.4f").end_row();
      }
    }
    common::write_file_atomically(dir / "read_disturb.csv", csv.str());
  }
  plot_error = plot_levels(level_plot(record, f), dir / "read_disturb.png");

  json result = {{"files", {"read_disturb.h5", "read_disturb.csv", "read_disturb.png"}},
                 {"cells", n},
                 {"levels", programmed_.levels},
                 {"reads_done", reads_done_},
                 {"reads_planned", options_.reads},
                 {"read_voltage_v", record.settings.read_voltage_v}};
  if (f) {
    json levels = json::array();
    for (const auto& l : f->levels) {
      levels.push_back({{"level", l.level},
                        {"cells", l.cells},
                        {"delta_per_read", l.delta_per_read},
                        {"standard_error", l.standard_error}});
    }
    json fit = {{"delta_per_read",
                 {{"value", f->delta_per_read},
                  {"standard_error", f->standard_error},
                  {"identifiable", f->identifiable}}},
                {"levels", levels}};
    if (f->rel_per_read) {
      fit["read_disturb"] = {
          {"rel_per_read",
           {{"value", *f->rel_per_read},
            {"standard_error", *f->rel_per_read_standard_error},
            {"identifiable", f->identifiable}}},
          {"onset_voltage_v", {{"value", f->onset_voltage_v}, {"assumed", true}}},
          {"slope_v", {{"value", f->slope_v}, {"assumed", true}}}};
      char how[200];
      std::snprintf(how, sizeof how,
                    "from the change per read at %.3g V over %zu cells, onset %.3g V and slope "
                    "%.3g V assumed (docs/bench.md, Read disturb)",
                    record.settings.read_voltage_v, n, f->onset_voltage_v, f->slope_v);
      result["calibration"] = {
          {"/read_disturb/rel_per_read",
           calibration_field({*f->rel_per_read, *f->rel_per_read_standard_error, f->identifiable},
                             how)}};
    }
    result["fit"] = fit;
  }
  return result;
}

}  // namespace metaplast::bench
