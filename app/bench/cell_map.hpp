// Cell map (docs/bench.md, "Measurements"): one read of the whole array (ArrayBoard::read_array,
// no pulse: it needs no permission) and, unless turned off, the board's pulse counters
// (counters_array), and every cell classified by one rule:
//
//   stuck       reads above stuck_above_us (a filament beyond every compliance level), or reads
//               formed though the board never counted a FORM pulse on it (a filament from
//               manufacture: a stuck-at defect) [counters];
//   formed      reads at least formed_threshold_us;
//   unformable  reads below it though the board counted FORM pulses on it [counters];
//   unformed    reads below it (pristine).
//
// A cell worn out by cycling and stuck at a conductance inside the switching range reads like a
// working one: one read cannot tell them apart (endurance tests find them by pulsing).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/bench/array_map.hpp"
#include "app/bench/measurement.hpp"

namespace metaplast::bench {

// The default formed threshold, relative to the LCS target: 0.39 uS on the default chip, where
// the tails of the pristine reads (0.05 uS, sigma 0.5 in ln G, read noise 0.05 uS) and of the
// LCS (3 uS, sigma 0.51 in ln G) cross: about 0.6 cells of 16384 on either side misread.
inline constexpr double kFormedThresholdPerLcs = 0.13;

struct CellMapOptions {
  double formed_threshold_us = 0;  // 0: kFormedThresholdPerLcs x the LCS target from identify
  double stuck_above_us = 0;       // 0: 2 x the highest level's target from identify
  bool counters = true;            // use the board's FORM pulse counters
};

// Throws OptionError naming formed-threshold-us, stuck-above-us or counters.
void check_cell_map_options(const CellMapOptions& options);
CellMapOptions cell_map_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const CellMapOptions& options);

// Class codes (the HDF5 file's "class" dataset and the CSV's names).
enum class CellClass : std::uint8_t { formed = 0, unformed = 1, unformable = 2, stuck = 3 };
inline constexpr int kCellClasses = 4;
const char* cell_class_name(CellClass c);

// The rule above for one cell; form_pulses < 0: no counters.
CellClass classify_cell(double conductance_us, long form_pulses, double formed_threshold_us,
                        double stuck_above_us);

class CellMapMeasurement final : public Measurement {
 public:
  explicit CellMapMeasurement(CellMapOptions options) : options_(options) {}

  std::string kind() const override { return "cell-map"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_cell_map_options(options_); }
  bool pulses() const override { return false; }
  void start(MeasurementContext&) override {}
  void restore(const nlohmann::json&, MeasurementContext&) override {}
  nlohmann::json progress_json() const override { return {{"read", read_}}; }
  bool done() const override { return read_; }
  // The one batch: the array read (and the counters), classified.
  void run_batch(MeasurementContext& context) override;
  std::size_t batches_done() const override { return read_ ? 1 : 0; }
  std::size_t batches_total() const override { return 1; }
  std::string batch_label() const override { return "array read"; }
  // cell_map.h5, cell_map.csv, cell_map.png; the counts per class.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  const CellBlock& block() const { return block_; }
  const std::vector<double>& conductance_us() const { return conductance_us_; }  // row-major
  const std::vector<CellClass>& classes() const { return classes_; }

 private:
  CellMapOptions options_;
  bool read_ = false;
  CellBlock block_;
  double formed_threshold_us_ = 0, stuck_above_us_ = 0;
  std::vector<double> conductance_us_;
  std::vector<long> form_pulses_;  // empty without counters
  std::vector<CellClass> classes_;
};

}  // namespace metaplast::bench
