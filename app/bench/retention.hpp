// Retention / drift (docs/bench.md, "Measurements"): N formed cells are programmed to the chosen
// levels (spread evenly, batch program-and-verify), then all of them are read at log-spaced times
// after programming, from seconds to hours, one batched read per time point. The time base is
// the board's own clock (ArrayBoard::uptime_ms), so the simulated board's accelerated clock
// (`sim:?clock=3600`) makes hours pass in seconds. The fit is that of devices::RelaxationModel:
//   G(t) / G0 = 1 - drift_per_decade_rel log10(1 + t / drift_reference_s)
//               + step_rel (1 - exp(-t / step_time_constant_s)),
// with G0 the cell's last verify read and step_rel ~ Normal(step_mean_rel, step_sigma_rel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/calibration_from_measurements.hpp"
#include "app/bench/measurement.hpp"
#include "app/bench/options.hpp"
#include "app/bench/programmed_cells.hpp"

namespace metaplast::bench {

inline constexpr std::int64_t kMaxRetentionCells = 16'384;  // one board
inline constexpr std::int64_t kMaxRetentionPoints = 1'000;

struct RetentionOptions {
  // N cells (256) programmed and followed, the levels (empty: every level of the board), how.
  ProgramPlan programming = default_plan(256);
  std::vector<double> times_s;  // read times after programming; empty: start/stop/points
  double start_s = 1.0;         // first read time (s), log-spaced up to stop_s
  double stop_s = 10'800.0;     // last read time (s): 3 hours
  std::size_t points = 20;      // read times from start_s to stop_s
};

// The read times of `options` (given, or log-spaced start..stop), ascending.
std::vector<double> retention_times(const RetentionOptions& options);

// Throws OptionError naming the option (cells, levels, times, start, stop, points, band-us,
// max-attempts, chunk-cells) and what it accepts.
void check_retention_options(const RetentionOptions& options);

// Parses a campaign step's options (keys as the command-line options without "--"); every key
// optional. Throws OptionError naming the key (an unknown key too).
RetentionOptions retention_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const RetentionOptions& options);

// The relaxation parameters (FittedParameter: a parameter is identifiable when its standard error
// is below its magnitude and, where that matters, its value lies inside the measured window).
struct RelaxationFit {
  FittedParameter step_mean_rel, step_sigma_rel, step_time_constant_s;
  FittedParameter drift_per_decade_rel, drift_reference_s;
  double read_noise_rel = 0;  // relative read noise seen between the two last reads
  std::size_t cells = 0, points = 0;
  double rms_residual_rel = 0;
};

// Fits the model above to ratios[cell][point] = G(t) / G0 at ages_s[cell][point] (seconds since
// the cell was programmed; NaN entries are skipped). Needs at least 5 time points with data.
// Throws std::invalid_argument when there is too little data.
RelaxationFit fit_relaxation(const std::vector<std::vector<double>>& ratios,
                             const std::vector<std::vector<double>>& ages_s);

class RetentionMeasurement final : public Measurement {
 public:
  explicit RetentionMeasurement(RetentionOptions options);

  std::string kind() const override { return "retention"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_retention_options(options_); }
  void start(MeasurementContext& context) override;
  void restore(const nlohmann::json& state, MeasurementContext& context) override;
  nlohmann::json progress_json() const override;
  bool done() const override;
  void run_batch(MeasurementContext& context) override;
  std::size_t batches_done() const override;
  std::size_t batches_total() const override { return times_s_.size(); }
  std::string batch_label() const override { return "time point"; }
  // retention.h5, retention.csv, retention.png (+ .gp, _plot.dat); the fit in the summary.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  // What was measured (for tests and the bench program).
  const ProgrammedCells& programmed() const { return programmed_; }
  const std::vector<double>& times_s() const { return times_s_; }
  // [point][cell]: conductance (uS) and age (s) at each read; NaN: not read (yet).
  const std::vector<std::vector<double>>& conductance_us() const { return conductance_us_; }
  const std::vector<std::vector<double>>& age_s() const { return age_s_; }
  std::optional<RelaxationFit> fit() const;
  // Host and link time spent in board calls (programming excluded): reads and clock queries.
  double board_seconds() const { return board_seconds_; }

  // The median G(t) per level, as drawn (with the fit when there is one).
  LevelPlot level_plot(const MeasurementRecord& record,
                       const std::optional<RelaxationFit>& fit_result) const;
  std::optional<LevelPlot> live_plot(const MeasurementRecord& record) const override;

 private:
  RetentionOptions options_;
  std::vector<double> times_s_;
  ProgrammedCells programmed_;
  std::vector<std::vector<double>> conductance_us_, age_s_;
  std::size_t next_point_ = 0;
  double board_seconds_ = 0;
};

}  // namespace metaplast::bench
