// Read disturb (docs/bench.md, "Measurements"): N formed cells are programmed to the chosen
// levels (as retention), then every cell is read R times in a row at the board's read voltage
// (the read_voltage_v setting, --read-voltage), each read one batched READ of all the cells. The
// conductances are recorded at log-spaced read counts. The fit is that of
// devices::ReadDisturbModel at that voltage: every read multiplies G by 1 + delta(V), so
//   ln(G_n / G_1) = (n - 1) ln(1 + delta)
// gives delta per read (and per level, to see whether it depends on the state). With the base
// calibration's onset_voltage_v and slope_v (one voltage cannot separate them from the
// amplitude), rel_per_read = delta / (exp((V - onset_voltage_v) / slope_v) - 1).
// Relaxation during the reads adds to the slope: --settle-s waits before the first read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/measurement.hpp"
#include "app/bench/options.hpp"
#include "app/bench/programmed_cells.hpp"
#include "devices/calibration.hpp"

namespace metaplast::bench {

inline constexpr std::int64_t kMaxReadDisturbCells = 16'384;
inline constexpr std::int64_t kMaxReadDisturbReads = 100'000'000;

struct ReadDisturbOptions {
  // N cells (64) programmed and read, the levels (empty: every level of the board), how.
  ProgramPlan programming = default_plan(64);
  std::uint64_t reads = 1000;  // R: reads of every cell
  std::size_t points = 30;     // read counts at which G is recorded (log-spaced 1..R)
  double settle_s = 0;  // wait on the board's clock after programming, before the first read
};

// The read counts G is recorded at: log-spaced integers from 1 to reads, distinct, ascending.
std::vector<std::uint64_t> read_disturb_counts(const ReadDisturbOptions& options);
// Throws OptionError naming the option (cells, levels, reads, points, settle-s, ...).
void check_read_disturb_options(const ReadDisturbOptions& options);
// A campaign step's options (keys as the command-line options without "--"). Throws
// OptionError naming the key.
ReadDisturbOptions read_disturb_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const ReadDisturbOptions& options);

struct ReadDisturbLevelFit {
  int level = 0;
  std::size_t cells = 0;
  double delta_per_read = 0, standard_error = 0;
};

struct ReadDisturbFit {
  double read_voltage_v = 0;
  double delta_per_read = 0, standard_error = 0;  // all cells pooled
  bool identifiable = false;                      // |delta| above two standard errors
  // rel_per_read of the model given the base calibration's onset and slope (nullopt when the
  // read voltage is at or below the onset: no disturb is expected there, delta ~ 0).
  std::optional<double> rel_per_read, rel_per_read_standard_error;
  double onset_voltage_v = 0, slope_v = 0;  // those assumed
  std::vector<ReadDisturbLevelFit> levels;
};

// Fits delta from conductance_us[point][cell] at read counts `counts` (NaN or <= 0: skipped);
// levels[cell] groups the per-level fits. Throws std::invalid_argument with fewer than 2 points.
ReadDisturbFit fit_read_disturb(const std::vector<std::uint64_t>& counts,
                                const std::vector<std::vector<double>>& conductance_us,
                                const std::vector<int>& levels, double read_voltage_v,
                                const devices::ReadDisturbModel& base);

class ReadDisturbMeasurement final : public Measurement {
 public:
  // `base`: the calibration whose onset and slope the rel_per_read fit assumes.
  explicit ReadDisturbMeasurement(ReadDisturbOptions options, devices::ReadDisturbModel base = {});

  std::string kind() const override { return "read-disturb"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_read_disturb_options(options_); }
  void start(MeasurementContext& context) override;
  void restore(const nlohmann::json& state, MeasurementContext& context) override;
  nlohmann::json progress_json() const override;
  bool done() const override { return next_point_ >= counts_.size(); }
  // Reads up to the next recorded count (at most kReadsPerBatch reads: Ctrl-C stays prompt).
  void run_batch(MeasurementContext& context) override;
  std::size_t batches_done() const override { return next_point_; }
  std::size_t batches_total() const override { return counts_.size(); }
  std::string batch_label() const override { return "recorded read count"; }
  // read_disturb.h5, read_disturb.csv, read_disturb.png (+ .gp, _plot.dat); the fit.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  static constexpr std::uint64_t kReadsPerBatch = 10'000;

  const ProgrammedCells& programmed() const { return programmed_; }
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  // [point][cell], uS; NaN: not read yet.
  const std::vector<std::vector<double>>& conductance_us() const { return conductance_us_; }
  std::optional<ReadDisturbFit> fit(double read_voltage_v) const;

  // The median G per level against the read count, as drawn (with the fit when there is one).
  LevelPlot level_plot(const MeasurementRecord& record,
                       const std::optional<ReadDisturbFit>& f) const;
  std::optional<LevelPlot> live_plot(const MeasurementRecord& record) const override;

 private:
  ReadDisturbOptions options_;
  devices::ReadDisturbModel base_;
  std::vector<std::uint64_t> counts_;
  ProgrammedCells programmed_;
  std::vector<std::vector<double>> conductance_us_;
  std::uint64_t reads_done_ = 0;
  std::size_t next_point_ = 0;
};

}  // namespace metaplast::bench
