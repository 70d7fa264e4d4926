// The programming window (docs/bench.md, "Measurements"): N formed cells, and a sweep of the SET
// pulse over a grid of gate (word-line) voltages, i.e. compliance currents I_CC, bit-line
// amplitudes and widths (each a list or start:stop:step; the axes not swept are fixed: the gate
// at the board's top level, amplitude and width at the board settings in force). Per sweep point
// (the batch a Ctrl-C lets finish): RESET every cell with the settings' RESET pulse and read them
// (one batched READ), SET them with ArrayBoard::set_explicit (one batched call), read them again.
// Every point's pulse is checked against the station's and the board's limits in start(), before
// a cell is read or pulsed: a sweep with one point out of limits is refused whole.
//
// A cell counts as switched when its read after SET is at least the switched threshold (default:
// the midpoint between the LCS and level-1 program-and-verify targets), among the cells whose
// read after RESET is below it. The fits (docs/calibration.md, "The simulated device's response
// to pulse conditions"):
//   - the gate -> median G table at the board's level-table gate voltages inside the measured
//     window (interpolated linearly between measured gates), at the reference amplitude and
//     width: result["calibration"]["/hcs_levels"];
//   - the SET S-curve (switched fraction against amplitude at the reference gate, per width):
//     P = Phi3((V - V_50) / (t / 6)), 1 above V_50 + t / 2, by maximum likelihood ->
//     /switching/set_threshold_bl_v = V_50 + t / 2 and /switching/set_transition_v = t;
//   - the over-drive slope from the mean G of the switched cells at amplitudes above the
//     threshold -> /switching/set_overdrive_rel_per_v;
//   - with two widths or more: V_50 against log10(width) -> /switching/width_v_per_decade.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/bench/measurement.hpp"
#include "app/bench/programmed_cells.hpp"
#include "instruments/board_types.hpp"

namespace metaplast::bench {

inline constexpr std::int64_t kMaxWindowCells = 16'384;
inline constexpr std::size_t kMaxWindowPoints = 10'000;

struct WindowOptions {
  std::size_t cells = 256;         // N formed cells (never an unformed one)
  std::uint64_t seed = 1;          // of the choice of cells
  double formed_threshold_us = 0;  // 0: 0.2 x the LCS target (as programmed_cells)
  // The sweep axes (empty: fixed, see above); at least one has two values or more.
  std::vector<double> gate_v, bl_v, width_ns;
  double switched_threshold_us = 0;  // 0: midpoint of the LCS and level-1 targets
};

// "0.8:1.2:0.1" (start:stop:step, stop included within step / 1000) or "0.8,0.9,1.2" (a list) as
// values; throws OptionError naming `key`.
std::vector<double> parse_sweep(const std::string& key, const std::string& text);
// Throws OptionError naming the option (cells, gate-v, bl-v, width-ns, ...).
void check_window_options(const WindowOptions& options);
// A campaign step's options (keys as the command-line options without "--"; a sweep is an array
// of numbers). Throws OptionError naming the key.
WindowOptions window_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const WindowOptions& options);

// The board's compliance current at a gate voltage: piecewise linear through the identify level
// table's (gate_voltage_v, icc_ua) points of levels 1..N, extrapolated linearly, never below 0
// (as docs/calibration.md, "Compliance current from the gate voltage").
double board_icc_ua(const std::vector<instruments::LevelInfo>& levels, double gate_v);

// One sweep point: the SET pulse.
struct WindowPoint {
  double gate_v = 0, bl_v = 0, width_ns = 0;
};

// A fitted parameter in the calibration convention (value, standard error or none).
struct WindowParameter {
  double value = 0;
  std::optional<double> standard_error;
  bool identifiable = false;
  std::string note;
};

struct SCurveFit {
  double gate_v = 0, width_ns = 0;
  double v50_v = 0, transition_v = 0;
  std::optional<double> v50_se_v, transition_se_v, threshold_se_v;
  bool identifiable = false;
  double threshold_v() const { return v50_v + transition_v / 2; }
};

// P(V) of the S-curve model (docs/calibration.md, "SET: probability and level").
double set_switch_probability(double bl_v, double v50_v, double transition_v);
// Maximum-likelihood fit of V_50 and the transition to `switched` of `total` cells at each
// amplitude. nullopt with fewer than 3 amplitudes.
std::optional<SCurveFit> fit_s_curve(const std::vector<double>& bl_v,
                                     const std::vector<std::size_t>& switched,
                                     const std::vector<std::size_t>& total);

class WindowMeasurement final : public Measurement {
 public:
  explicit WindowMeasurement(WindowOptions options);

  std::string kind() const override { return "window"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_window_options(options_); }
  // Resolves the axes, checks every point against the limits, chooses the cells.
  void start(MeasurementContext& context) override;
  void restore(const nlohmann::json& state, MeasurementContext& context) override;
  nlohmann::json progress_json() const override;
  bool done() const override { return next_point_ >= points_.size(); }
  // One sweep point: RESET, READ, SET (explicit), READ of all the cells, each one batched call.
  void run_batch(MeasurementContext& context) override;
  std::size_t batches_done() const override { return next_point_; }
  std::size_t batches_total() const override { return points_.size(); }
  std::string batch_label() const override { return "sweep point"; }
  // window.h5, window.csv, window.png (G against gate), window_icc.png (G against I_CC),
  // window_scurve.png (switched fraction against amplitude); the fits.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  const std::vector<WindowPoint>& points() const { return points_; }
  // [point][cell], uS; NaN: not measured yet.
  const std::vector<std::vector<double>>& reset_us() const { return reset_us_; }
  const std::vector<std::vector<double>>& set_us() const { return set_us_; }
  // The fits as result["calibration"] (keys: JSON pointers of docs/calibration.md).
  nlohmann::json calibration_json() const;

  // The plots as drawn, with their file names: window.png and window_icc.png (two gates or
  // more), window_scurve.png (two amplitudes or more); a plot may have no curve yet.
  std::vector<std::pair<std::string, LevelPlot>> plots(const MeasurementRecord& record) const;
  // The first plot with a curve.
  std::optional<LevelPlot> live_plot(const MeasurementRecord& record) const override;

 private:
  // Per measured point: cells RESET (valid), switched, and G after SET over the valid cells
  // (median, 10th and 90th percentiles).
  struct PointStats {
    std::size_t valid = 0, switched = 0;
    double median_us = std::numeric_limits<double>::quiet_NaN(), p10_us = median_us,
           p90_us = median_us;
    double fraction() const {
      return valid ? static_cast<double>(switched) / static_cast<double>(valid)
                   : std::numeric_limits<double>::quiet_NaN();
    }
  };
  std::vector<PointStats> point_stats() const;
  // The axes with the fixed ones filled in from the board and the settings.
  void resolve(const instruments::ArrayBoard& board);
  void check_limits(const instruments::ArrayBoard& board) const;
  bool switched(std::size_t point, std::size_t cell) const;
  bool valid(std::size_t point, std::size_t cell) const;

  WindowOptions options_;
  std::vector<double> gates_, bls_, widths_;  // resolved axes
  std::vector<WindowPoint> points_;           // widths outer, then gates, amplitudes inner
  std::vector<instruments::LevelInfo> levels_;
  double threshold_us_ = 0;
  double reference_bl_v_ = 0, reference_width_ns_ = 0, reference_gate_v_ = 0;
  ProgrammedCells cells_;
  std::vector<std::vector<double>> reset_us_, set_us_;
  std::size_t next_point_ = 0;
};

}  // namespace metaplast::bench
