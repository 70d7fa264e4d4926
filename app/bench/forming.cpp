#include "app/bench/forming.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "app/bench/level_plot.hpp"
#include "app/bench/options.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The board takes voltages in mV (to_wire): the ramp is on that grid, so the voltage recorded is
// the one applied.
double on_millivolt_grid(double v) { return std::round(v * 1000.0) / 1000.0; }

json nan_as_null(const std::vector<double>& v) {
  json out = json::array();
  for (double x : v) out.push_back(std::isnan(x) ? json(nullptr) : json(x));
  return out;
}

std::vector<double> null_as_nan(const json& j) {
  std::vector<double> out;
  for (const json& x : j) out.push_back(x.is_null() ? kNaN : x.get<double>());
  return out;
}

}  // namespace

std::vector<double> forming_ramp(const FormingOptions& o) {
  std::vector<double> ramp;
  if (!(o.step_v > 0)) return ramp;
  for (std::size_t k = 0; k <= kMaxFormingSteps; ++k) {
    const double v = on_millivolt_grid(o.start_v + static_cast<double>(k) * o.step_v);
    if (v > o.stop_v + 1e-9) break;
    ramp.push_back(v);
  }
  return ramp;
}

void check_forming_options(const FormingOptions& o) {
  check_block(o.block);
  if (!(o.start_v > 0) || o.start_v > 10) throw OptionError("start-v", "must be in (0, 10] V");
  if (!(o.stop_v >= o.start_v) || o.stop_v > 10) {
    throw OptionError("stop-v", "must be in [start-v, 10] V");
  }
  if (!(o.step_v >= 0.001) || o.step_v > 5) throw OptionError("step-v", "must be in [0.001, 5] V");
  if ((o.stop_v - o.start_v) / o.step_v >= static_cast<double>(kMaxFormingSteps)) {
    throw OptionError("step-v", "the ramp would have more than " +
                                    std::to_string(kMaxFormingSteps) +
                                    " steps: choose a larger step or a shorter ramp");
  }
  if (!(o.width_ns >= 1) || o.width_ns > 1e7)
    throw OptionError("width-ns", "must be in [1, 1e7] ns");
  if (!(o.compliance_v > 0) || o.compliance_v > 10) {
    throw OptionError("compliance-v", "must be in (0, 10] V");
  }
  if (!(o.threshold_us > 0) || o.threshold_us > 1e4) {
    throw OptionError("threshold-us", "must be in (0, 1e4] uS");
  }
}

json to_json(const FormingOptions& o) {
  json j = {{"start-v", o.start_v},
            {"stop-v", o.stop_v},
            {"step-v", o.step_v},
            {"width-ns", o.width_ns},
            {"compliance-v", o.compliance_v},
            {"threshold-us", o.threshold_us}};
  add_block_json(o.block, j);
  return j;
}

FormingOptions forming_options_from_json(const json& step) {
  json_only_keys(step, {"row0", "col0", "rows", "cols", "start-v", "stop-v", "step-v", "width-ns",
                        "compliance-v", "threshold-us"});
  FormingOptions o;
  read_block_options(step, o.block);
  const auto number = [&](const char* key, double& v, double min, double max) {
    if (step.contains(key)) v = json_number(step, key, min, max);
  };
  number("start-v", o.start_v, 0, 10);
  number("stop-v", o.stop_v, 0, 10);
  number("step-v", o.step_v, 0.001, 5);
  number("width-ns", o.width_ns, 1, 1e7);
  number("compliance-v", o.compliance_v, 0, 10);
  number("threshold-us", o.threshold_us, 0, 1e4);
  check_forming_options(o);
  return o;
}

FormingFit fit_forming(const std::vector<double>& ramp, std::size_t steps_done,
                       const std::vector<int>& forming_step, double step_v, double width_ns,
                       const devices::FormingModel& base) {
  FormingFit fit;
  double s = 0, s2 = 0;
  std::vector<std::size_t> per_step(steps_done, 0);
  for (int k : forming_step) {
    if (k == kFormedBefore) continue;
    ++fit.ramp_cells;
    if (k < 0 || static_cast<std::size_t>(k) >= steps_done) {
      ++fit.unformed;
      continue;
    }
    ++fit.formed;
    ++per_step[static_cast<std::size_t>(k)];
    const double mid = ramp[static_cast<std::size_t>(k)] - step_v / 2;
    s += mid;
    s2 += mid * mid;
  }
  if (fit.formed < 2) {
    throw std::invalid_argument("forming fit: needs at least 2 cells formed in the ramp, got " +
                                std::to_string(fit.formed));
  }
  const double n = static_cast<double>(fit.formed);
  const double mean = s / n;
  const double var = std::max(0.0, (s2 - n * mean * mean) / (n - 1));
  const double sigma = std::sqrt(std::max(0.0, var - step_v * step_v / 12));
  fit.median_v = {mean, sigma / std::sqrt(n)};
  fit.sigma_v = {sigma, sigma / std::sqrt(2 * (n - 1))};
  fit.width_shift_v = base.width_v_per_decade * std::log10(width_ns / base.reference_width_ns);
  fit.median_reference_v = mean + fit.width_shift_v;
  fit.first_step = per_step.empty() ? 0 : per_step[0];
  const double cells = static_cast<double>(fit.ramp_cells);
  fit.identifiable = fit.formed >= 10 && static_cast<double>(fit.first_step) <= 0.02 * cells &&
                     static_cast<double>(fit.unformed) <= 0.02 * cells;
  std::size_t cumulative = 0;
  for (std::size_t k = 0; k < steps_done; ++k) {
    cumulative += per_step[k];
    fit.formed_fraction.push_back(static_cast<double>(cumulative) / cells);
  }
  return fit;
}

FormingMeasurement::FormingMeasurement(FormingOptions options, devices::FormingModel base)
    : options_(std::move(options)), base_(base), ramp_(forming_ramp(options_)) {}

instruments::BoardSettings FormingMeasurement::step_settings(const instruments::BoardSettings& base,
                                                             double bl_v) const {
  instruments::BoardSettings s = base;
  s.form_bl_voltage_v = bl_v;
  s.form_wl_voltage_v = options_.compliance_v;
  s.form_pulse_width_ns = options_.width_ns;
  return s;
}

std::vector<std::size_t> FormingMeasurement::pending() const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < forming_step_.size(); ++i) {
    if (forming_step_[i] == kNotFormed) out.push_back(i);
  }
  return out;
}

bool FormingMeasurement::done() const {
  return next_step_ >= ramp_.size() || std::none_of(forming_step_.begin(), forming_step_.end(),
                                                    [](int k) { return k == kNotFormed; });
}

void FormingMeasurement::start(MeasurementContext& context) {
  auto& board = context.board;
  check_block_on_board(options_.block, board.info());
  // The ramp's highest pulse, before anything is read or pulsed.
  instruments::check_station_limits(step_settings(board.settings(), ramp_.back()),
                                    board.station_limits());
  const std::size_t n = options_.block.size();
  const auto& b = options_.block;
  const auto map = board.read_block(b.row0, b.col0, b.rows, b.cols);
  initial_us_ = map.conductance_us;
  forming_step_.assign(n, kNotFormed);
  std::size_t before = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (initial_us_[i] >= options_.threshold_us) {
      forming_step_[i] = kFormedBefore;
      ++before;
    }
  }
  read_us_.assign(ramp_.size(), std::vector<double>(n, kNaN));
  next_step_ = 0;
  context.log("forming: " + std::to_string(n) + " cells, " + std::to_string(before) +
              " already formed (>= " + json(options_.threshold_us).dump() + " uS, never pulsed); " +
              std::to_string(ramp_.size()) + " steps " + json(ramp_.front()).dump() + ".." +
              json(ramp_.back()).dump() + " V, " + json(options_.width_ns).dump() + " ns, gate " +
              json(options_.compliance_v).dump() + " V");
}

void FormingMeasurement::restore(const json& state, MeasurementContext& context) {
  check_block_on_board(options_.block, context.board.info());
  instruments::check_station_limits(step_settings(context.board.settings(), ramp_.back()),
                                    context.board.station_limits());
  const std::size_t n = options_.block.size();
  initial_us_ = null_as_nan(state.at("initial_us"));
  forming_step_ = state.at("forming_step").get<std::vector<int>>();
  next_step_ = state.at("next_step").get<std::size_t>();
  if (initial_us_.size() != n || forming_step_.size() != n || next_step_ > ramp_.size()) {
    throw std::invalid_argument("the saved forming state does not match the block and ramp");
  }
  read_us_.assign(ramp_.size(), std::vector<double>(n, kNaN));
  const json& reads = state.at("read_us");
  for (std::size_t k = 0; k < next_step_ && k < reads.size(); ++k)
    read_us_[k] = null_as_nan(reads[k]);
  if (done()) return;
  // A killed run may have pulsed the next step without saving it: a cell formed by that pulse
  // counts at that step (not pulsed again).
  const auto cells = pending();
  std::vector<instruments::Cell> list;
  for (std::size_t i : cells) list.push_back(options_.block.cell(i));
  const auto readings = context.board.read(list);
  for (std::size_t j = 0; j < cells.size(); ++j) {
    if (readings[j].conductance_us >= options_.threshold_us) {
      forming_step_[cells[j]] = static_cast<int>(next_step_);
      read_us_[next_step_][cells[j]] = readings[j].conductance_us;
    }
  }
}

json FormingMeasurement::progress_json() const {
  json reads = json::array();
  for (std::size_t k = 0; k < next_step_; ++k) reads.push_back(nan_as_null(read_us_[k]));
  return {{"initial_us", nan_as_null(initial_us_)},
          {"forming_step", forming_step_},
          {"next_step", next_step_},
          {"read_us", reads}};
}

void FormingMeasurement::run_batch(MeasurementContext& context) {
  auto& board = context.board;
  const std::size_t k = next_step_;
  board.configure(step_settings(board.settings(), ramp_[k]));
  board.activate();
  const auto cells = pending();
  std::vector<instruments::Cell> list;
  for (std::size_t i : cells) list.push_back(options_.block.cell(i));
  board.form(list);                        // one batched FORM of every cell not formed yet
  const auto readings = board.read(list);  // one batched READ of them
  for (std::size_t j = 0; j < cells.size(); ++j) {
    read_us_[k][cells[j]] = readings[j].conductance_us;
    if (readings[j].conductance_us >= options_.threshold_us) {
      forming_step_[cells[j]] = static_cast<int>(k);
    }
  }
  ++next_step_;
}

std::vector<instruments::Cell> FormingMeasurement::unformed_cells() const {
  std::vector<instruments::Cell> out;
  for (std::size_t i : pending()) out.push_back(options_.block.cell(i));
  return out;
}

std::optional<FormingFit> FormingMeasurement::fit() const {
  try {
    return fit_forming(ramp_, next_step_, forming_step_, options_.step_v, options_.width_ns, base_);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

namespace {

const char* status_name(int step) {
  if (step == kFormedBefore) return "formed-before";
  if (step == kNotFormed) return "unformed";
  return "formed";
}

json parameter_json(const FormingParameter& p, bool identifiable, const std::string& note) {
  return {{"value", p.value},
          {"standard_error", p.standard_error},
          {"identifiable", identifiable},
          {"note", note}};
}

}  // namespace

// The cumulative formed fraction against the ramp's voltage, with the fitted yield curve.
LevelPlot FormingMeasurement::yield_plot(const MeasurementRecord& record,
                                         const std::optional<FormingFit>& f) const {
  const std::size_t n = options_.block.size(), steps = next_step_;
  const std::string who = record.board.serial + ", chip " + record.chip_id;
  LevelPlot plot;
  plot.title = "Forming yield: " + who + ", " + std::to_string(n) + " cells, " +
               json(options_.width_ns).dump() + " ns, gate " + json(options_.compliance_v).dump() +
               " V";
  plot.x_label = "FORM bit-line voltage V_{BL} (V)";
  plot.y_label = "Cumulative formed fraction";
  plot.key_title = "";
  if (f) {
    LevelCurve curve;
    curve.label = "measured";
    curve.x.assign(ramp_.begin(), ramp_.begin() + static_cast<long>(steps));
    curve.median = f->formed_fraction;
    const double yield_max =
        1.0 - static_cast<double>(f->unformed) / std::max<std::size_t>(1, f->ramp_cells);
    for (double v = ramp_.front() - options_.step_v; v <= ramp_.back() + 1e-9;
         v += options_.step_v / 5) {
      curve.fit_x.push_back(v);
      curve.fit_y.push_back(
          yield_max * 0.5 *
          std::erfc(-(v - f->median_v.value) / (f->sigma_v.value * std::sqrt(2.0))));
    }
    plot.curves.push_back(std::move(curve));
  }
  return plot;
}

std::optional<LevelPlot> FormingMeasurement::live_plot(const MeasurementRecord& record) const {
  if (next_step_ == 0) return std::nullopt;
  return yield_plot(record, fit());
}

json FormingMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                       std::string& plot_error) const {
  const CellBlock& b = options_.block;
  const std::size_t n = b.size(), steps = next_step_;
  const auto f = fit();
  // The forming voltage of every cell: the step's voltage, NaN when not formed in the ramp.
  std::vector<double> voltage(n, kNaN), last_us(n, kNaN);
  std::vector<std::int16_t> step_code(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int k = forming_step_.empty() ? kNotFormed : forming_step_[i];
    step_code[i] = static_cast<std::int16_t>(k);
    if (k >= 0) voltage[i] = ramp_[static_cast<std::size_t>(k)];
    for (std::size_t s = 0; s < steps; ++s) {
      if (!std::isnan(read_us_[s][i])) last_us[i] = read_us_[s][i];
    }
  }
  const std::vector<double> initial =
      initial_us_.empty() ? std::vector<double>(n, kNaN) : initial_us_;
  {
    util::H5File h5(dir / "forming.h5");
    write_record_attributes(h5, record);
    write_block_scales(h5, b);
    const std::vector<double> ramp(ramp_.begin(), ramp_.begin() + static_cast<long>(steps));
    h5.write_vector("ramp_voltage_v", ramp, "V, FORM bit-line voltage of the ramp step");
    h5.set_scale("ramp_voltage_v", "ramp step");
    h5.write_dataset("forming_voltage_v", {b.rows, b.cols}, voltage,
                     "V, FORM bit-line voltage of the step the cell formed at (NaN: not formed "
                     "in the ramp)");
    attach_block_scales(h5, "forming_voltage_v", 0);
    h5.write_dataset("forming_step", {b.rows, b.cols}, step_code,
                     "ramp step index the cell formed at; -1 not formed, -2 formed before the "
                     "ramp (never pulsed)");
    attach_block_scales(h5, "forming_step", 0);
    h5.write_dataset("initial_us", {b.rows, b.cols}, initial, "uS, read before the ramp");
    attach_block_scales(h5, "initial_us", 0);
    std::vector<double> reads;
    reads.reserve(steps * n);
    for (std::size_t s = 0; s < steps; ++s)
      reads.insert(reads.end(), read_us_[s].begin(), read_us_[s].end());
    h5.write_dataset("read_us", {steps, b.rows, b.cols}, reads,
                     "uS, the read after the step's FORM (NaN: not pulsed at that step)");
    h5.attach_scale("read_us", "ramp_voltage_v", 0);
    attach_block_scales(h5, "read_us", 1);
    h5.create_group("fit");
    h5.string_attribute("fit", "model",
                        "V_f ~ Normal(median, sigma) at the reference width; a cell forms at the "
                        "first step V_k >= V_f; midpoints V_k - step/2, Sheppard-corrected "
                        "(docs/calibration.md, 4. Forming)");
    h5.number_attribute("fit", "threshold_us", options_.threshold_us);
    if (f) {
      h5.number_attribute("fit", "median_voltage_v", f->median_reference_v);
      h5.number_attribute("fit", "median_voltage_standard_error_v", f->median_v.standard_error);
      h5.number_attribute("fit", "median_voltage_at_width_v", f->median_v.value);
      h5.number_attribute("fit", "width_shift_v", f->width_shift_v);
      h5.number_attribute("fit", "sigma_v", f->sigma_v.value);
      h5.number_attribute("fit", "sigma_standard_error_v", f->sigma_v.standard_error);
      h5.write_vector("fit/formed_fraction", f->formed_fraction,
                      "fraction of the ramp's cells formed by the step (cumulative)");
      h5.attach_scale("fit/formed_fraction", "ramp_voltage_v", 0);
    }
    h5.commit();
  }
  const auto header = csv_header_lines(record);
  {
    util::CsvWriter csv(header, {"row", "col", "status", "forming_voltage_v", "forming_step",
                                 "initial_us", "last_us"});
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = b.cell(i);
      csv.integer(c.row).integer(c.col).text(status_name(step_code[i] >= 0 ? 0 : step_code[i]));
      csv.number(voltage[i], "%.3f").integer(step_code[i]);
      csv.number(initial[i], "%.4f").number(last_us[i], "%.4f").end_row();
    }
    common::write_file_atomically(dir / "forming.csv", csv.str());
  }
  const auto unformed = unformed_cells();
  {
    util::CsvWriter csv(header, {"row", "col", "initial_us", "last_us"});
    for (std::size_t i : pending()) {
      const auto c = b.cell(i);
      csv.integer(c.row).integer(c.col).number(initial[i], "%.4f").number(last_us[i], "%.4f");
      csv.end_row();
    }
    common::write_file_atomically(dir / "forming_unformed.csv", csv.str());
  }
  const std::string who = record.board.serial + ", chip " + record.chip_id;
  plot_error = plot_levels(yield_plot(record, f), dir / "forming.png");
  ArrayMapPlot map;
  map.title = "Forming voltage: " + who;
  map.block = b;
  map.values = voltage;
  map.colour_bar_label = "Forming voltage V_{BL} (V)";
  map.marked = unformed;
  map.marked_label = "not formed by " + json(ramp_.back()).dump() + " V";
  const std::string map_error = plot_array_map(map, dir / "forming_map.png");
  if (plot_error.empty()) plot_error = map_error;

  json cells = json::array();
  for (const auto& c : unformed) cells.push_back({{"row", c.row}, {"col", c.col}});
  json result = {
      {"files",
       {"forming.h5", "forming.csv", "forming_unformed.csv", "forming.png", "forming_map.png"}},
      {"cells", n},
      {"steps_done", steps},
      {"steps_planned", ramp_.size()},
      {"last_voltage_v", steps > 0 ? ramp_[steps - 1] : kNaN},
      {"unformed_cells", cells}};
  if (f) {
    result["formed_before"] = n - f->ramp_cells;
    result["formed"] = f->formed;
    result["unformed"] = f->unformed;
    result["unformed_fraction"] = static_cast<double>(f->unformed) / f->ramp_cells;
    char note[200];
    std::snprintf(note, sizeof note,
                  "mean of the interval midpoints of %zu cells formed in a %.3g V step ramp, "
                  "converted from %.4g ns by %.3g V (width_v_per_decade %.3g V assumed)",
                  f->formed, options_.step_v, options_.width_ns, f->width_shift_v,
                  base_.width_v_per_decade);
    FormingParameter median = f->median_v;
    median.value = f->median_reference_v;
    result["calibration"] = {
        {"/forming/median_voltage_v", parameter_json(median, f->identifiable, note)},
        {"/forming/sigma_v",
         parameter_json(f->sigma_v, f->identifiable,
                        "standard deviation of the midpoints, Sheppard-corrected for the step")}};
  }
  return result;
}

}  // namespace metaplast::bench
