// Endurance (docs/bench.md, "Measurements"): the formed cells of a region the user names
// (--rows, --cols: never the whole array by accident) are cycled SET/RESET until they fail or N
// cycles are done. A cycle is one batched SET (ArrayBoard::set at the SET level) and one batched
// RESET of every cell still alive; at the read points (log-spaced cycle counts, or every k
// cycles) the cycle's SET and RESET are each followed by one batched READ: G_LRS (after SET) and
// G_HRS (after RESET).
//
// Failure rule: a cell's window is closed at a read point when G_LRS < window_factor x G_HRS; a
// cell fails at the first of `confirm_points` consecutive closed read points, and is no longer
// pulsed from the read point that confirms it. Its cycles to failure lie between the cycle of the
// last open read point before that run and the cycle of the run's first point (interval
// censored); cells alive at the end are right-censored at the last read point. A cell whose
// window is closed at the first read point is "dead on arrival" (a defect, or worn out before):
// reported, left out of the fit.
//
// Units: the simulator (docs/calibration.md) and /endurance/median_cycles count programming
// operations, SET + RESET *pulses*, including those the cell had before (its board counters,
// read at the start): the fit works in those pulses, P = P0 + 2 x cycles, so its median is
// directly /endurance/median_cycles; the median in cycles is reported beside it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/measurement.hpp"
#include "app/bench/options.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::bench {

inline constexpr std::int64_t kMaxEnduranceCycles = 1'000'000'000;

struct EnduranceOptions {
  // The region cycled, inclusive [first, last] row and column: both required.
  std::vector<int> rows, cols;
  std::uint64_t cycles = 10'000;   // N: cycles at most
  std::size_t points = 40;         // read points, log-spaced from cycle 1 to N
  std::uint64_t read_every = 0;    // > 0: read at cycle 1 and every k cycles instead (and at N)
  int set_level = 0;               // SET compliance level 1..L (0: the board's highest)
  double window_factor = 2.0;      // the window is open while G_LRS >= factor x G_HRS
  std::size_t confirm_points = 1;  // m: consecutive closed read points that fail a cell
  double formed_threshold_us = 0;  // a cell reading at least this is cycled (0: 0.2 x LCS target)
};

// The cycle counts read at: distinct, ascending, from 1 to options.cycles.
std::vector<std::uint64_t> endurance_read_cycles(const EnduranceOptions& options);
// Throws OptionError naming the option (rows, cols, cycles, points, ...).
void check_endurance_options(const EnduranceOptions& options);
// A campaign step's options (keys as the command-line options without "--"; rows and cols as
// [first, last]). Throws OptionError naming the key.
EnduranceOptions endurance_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const EnduranceOptions& options);

// One cell's cycles to failure, in programming pulses: failed in (low, high], or alive after
// `low` (censored, high unset).
struct FailureInterval {
  double low_pulses = 0;
  std::optional<double> high_pulses;
};

struct EstimatedValue {
  double value = 0;
  std::optional<double> standard_error;  // nullopt: not estimable from these data
  bool identifiable = false;
};

struct EnduranceFit {
  std::size_t cells = 0, failed = 0, censored = 0, dead_on_arrival = 0;
  std::size_t stuck_high = 0, stuck_low = 0;
  EstimatedValue median_pulses;  // /endurance/median_cycles (SET + RESET pulses)
  EstimatedValue sigma_ln;       // /endurance/sigma_ln
  EstimatedValue stuck_hcs_probability;
  double median_cycles = 0;  // the same median in SET/RESET cycles, (median_pulses - P0) / 2
  double log_likelihood = 0;
};

// Maximum likelihood log-normal fit of interval- and right-censored failure pulses. Throws
// std::invalid_argument when no cell failed (nothing locates the distribution).
EnduranceFit fit_lognormal_failures(const std::vector<FailureInterval>& cells);

class EnduranceMeasurement final : public Measurement {
 public:
  explicit EnduranceMeasurement(EnduranceOptions options);

  std::string kind() const override { return "endurance"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_endurance_options(options_); }
  // Reads the region, keeps its formed cells, checks the SET level against the station limit,
  // reads the cells' pulse counters (P0).
  void start(MeasurementContext& context) override;
  void restore(const nlohmann::json& state, MeasurementContext& context) override;
  nlohmann::json progress_json() const override;
  bool done() const override {
    return next_point_ >= read_cycles_.size() || (!cells_.empty() && alive_count() == 0);
  }
  // Cycles up to the next read point (at most kCyclesPerBatch: Ctrl-C stays prompt).
  void run_batch(MeasurementContext& context) override;
  // Progress counts cycles (the read points are log-spaced: their count would misstate the ETA).
  std::size_t batches_done() const override { return cycles_done_; }
  std::size_t batches_total() const override { return options_.cycles; }
  std::string batch_label() const override { return "cycle"; }
  std::size_t read_points_done() const { return next_point_; }
  // endurance.h5, endurance.csv, endurance.png (window), endurance_survival.png; the fit.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  static constexpr std::uint64_t kCyclesPerBatch = 1000;

  const std::vector<instruments::Cell>& cells() const { return cells_; }
  const std::vector<std::uint64_t>& read_cycles() const { return read_cycles_; }
  std::uint64_t cycles_done() const { return cycles_done_; }
  // [point][cell], uS; NaN: not read (later than the cell's failure, or not reached).
  const std::vector<std::vector<double>>& lrs_us() const { return lrs_us_; }
  const std::vector<std::vector<double>>& hrs_us() const { return hrs_us_; }
  // Per cell: the read point index at which it failed (the first closed point of its run), or
  // nullopt while alive.
  std::vector<std::optional<std::size_t>> failure_points() const;
  std::vector<FailureInterval> failure_intervals() const;
  // Per failed cell (else nullopt): stuck at HCS (true) or LCS, from its G at failure against
  // the geometric middle of the first read point's median LRS and HRS.
  std::vector<std::optional<bool>> stuck_high() const;
  std::optional<EnduranceFit> fit() const;

  // The LRS and HRS against the cycle count, as endurance.png draws them.
  LevelPlot window_plot(const MeasurementRecord& record) const;
  std::optional<LevelPlot> live_plot(const MeasurementRecord& record) const override;

 private:
  std::size_t alive_count() const;
  void record_read_point(const std::vector<std::size_t>& alive,
                         const std::vector<instruments::CellReading>& lrs,
                         const std::vector<instruments::CellReading>& hrs);

  EnduranceOptions options_;
  std::vector<std::uint64_t> read_cycles_;
  std::vector<instruments::Cell> cells_;
  std::vector<std::uint64_t> initial_pulses_;  // P0: SET + RESET pulses before the first cycle
  int set_level_ = 0;
  std::vector<std::vector<double>> lrs_us_, hrs_us_;
  std::vector<std::size_t> closed_run_;        // consecutive closed read points, per cell
  std::vector<std::int64_t> failed_at_point_;  // -1: alive
  std::uint64_t cycles_done_ = 0;
  std::size_t next_point_ = 0;
  std::size_t unformed_in_region_ = 0;
};

}  // namespace metaplast::bench
