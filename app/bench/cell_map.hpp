// Cell map (docs/bench.md, "Measurements"): one read of the whole array (ArrayBoard::read_array,
// no pulse: it needs no permission) and, unless turned off, the board's pulse counters
// (counters_array), or the same from a saved whole-array read (--from FILE: app/bench/
// saved_read.hpp, no board), and every cell classified by one rule, in this order of precedence:
//
//   stuck       reads above stuck_above_us (a filament beyond every compliance level), or reads
//               formed though the board never counted a FORM pulse on it (a filament from
//               manufacture: a stuck-at defect) [counters];
//   bad         the chip registry (app/hil/chip_registry.hpp) lists the cell as bad for this
//               chip (its reason in the CSV) [registry];
//   formed      reads at least formed_threshold_us;
//   unformable  reads below it though the board counted FORM pulses on it [counters];
//   unformed    reads below it (pristine).
//
// Stuck comes first because it is what the read shows now (a cell the registry lists as bad
// and that reads stuck is counted stuck, the registry's reason still in the CSV); bad comes
// before the rest because the registry knows what one read cannot (a cell that failed
// program-and-verify reads like a formed one).
// A cell worn out by cycling and stuck at a conductance inside the switching range reads like a
// working one: one read cannot tell them apart (endurance tests find them by pulsing).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/array_map.hpp"
#include "app/bench/measurement.hpp"
#include "app/bench/saved_read.hpp"
#include "app/hil/chip_registry.hpp"

namespace metaplast::bench {

// The default formed threshold, relative to the LCS target: 0.39 uS on the default chip, where
// the tails of the pristine reads (0.05 uS, sigma 0.5 in ln G, read noise 0.05 uS) and of the
// LCS (3 uS, sigma 0.51 in ln G) cross: about 0.6 cells of 16384 on either side misread.
inline constexpr double kFormedThresholdPerLcs = 0.13;

struct CellMapOptions {
  // 0: kFormedThresholdPerLcs x the LCS target from identify (--from: the file's own map's
  // threshold, else that of the built-in calibration's LCS target, the simulated board's)
  double formed_threshold_us = 0;
  double stuck_above_us = 0;  // 0: 2 x the highest level's target, found as above
  bool counters = true;       // use the board's FORM pulse counters (--from: the file's, if any)
  std::string from;           // a saved whole-array read to map instead of the board; "": board
  // The chip registry to take bad cells from; "": for a board, none for an in-process sim:
  // board, else the default registry (hil::ChipRegistry::for_run); for --from, the default one.
  std::string chips_dir;
};

// Throws OptionError naming formed-threshold-us, stuck-above-us, counters, from or chips-dir.
void check_cell_map_options(const CellMapOptions& options);
CellMapOptions cell_map_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const CellMapOptions& options);

// Class codes (the HDF5 file's "class" dataset and the CSV's names).
enum class CellClass : std::uint8_t {
  formed = 0,
  unformed = 1,
  unformable = 2,
  stuck = 3,
  bad = 4
};
inline constexpr int kCellClasses = 5;
const char* cell_class_name(CellClass c);

// The rule above for one cell; form_pulses < 0: no counters; registry_bad: the chip registry
// lists the cell as bad.
CellClass classify_cell(double conductance_us, long form_pulses, double formed_threshold_us,
                        double stuck_above_us, bool registry_bad = false);

class CellMapMeasurement final : public Measurement {
 public:
  explicit CellMapMeasurement(CellMapOptions options) : options_(std::move(options)) {}

  std::string kind() const override { return "cell-map"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_cell_map_options(options_); }
  bool pulses() const override { return false; }
  void start(MeasurementContext&) override {}
  void restore(const nlohmann::json&, MeasurementContext&) override {}
  nlohmann::json progress_json() const override { return {{"read", read_}}; }
  bool done() const override { return read_; }
  // The one batch: the array read (and the counters), classified with the bad cells of the
  // chip record (if the registry has one for context.record.chip_id).
  void run_batch(MeasurementContext& context) override;
  // The same from a saved read, without a board (the thresholds as CellMapOptions says), with
  // the bad cells of `chip_id`'s record in the registry folder `registry` ("": none).
  void classify_saved(const SavedRead& read, const std::filesystem::path& registry,
                      const std::string& chip_id);
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
  // The one classification of live and saved maps: every cell by classify_cell.
  void classify(const std::optional<hil::ChipRecord>& chip);
  // "formed", "formed, counted FORM pulses: 3", "reads above stuck_above_us", the registry's
  // reason: the CSV's reason column.
  std::string reason(std::size_t cell) const;

  CellMapOptions options_;
  bool read_ = false;
  CellBlock block_;
  double formed_threshold_us_ = 0, stuck_above_us_ = 0;
  // Where the defaults came from: "board", the file's kind, "built-in calibration" (prefixed
  // "options, else " when an option overrides one).
  std::string thresholds_from_;
  std::vector<double> conductance_us_;
  std::vector<long> form_pulses_;  // empty without counters
  std::vector<CellClass> classes_;
  std::map<std::uint32_t, hil::BadCellRecord> bad_cells_;  // the chip record's, in the array
  std::string registry_note_;  // where the bad cells came from, or why there are none
};

// `metaplast measure cell-map --from FILE` (a campaign cell-map step with "from"): the map of a
// saved whole-array read, no board. `chip`: --chip ("": the chip the file names, if any). The
// outputs are those of a live map (run_measurement_without_board: record.source names the file
// with its sha256 in place of a board). Throws std::invalid_argument before the output folder is
// made for a file that is missing, of another format, partial or with NaN (saved_read.hpp), and
// for a chip record of another geometry.
MeasurementOutcome map_saved_read(const CellMapOptions& options, const std::string& chip,
                                  const std::filesystem::path& out,
                                  const std::function<void(const std::string&)>& log = {});

}  // namespace metaplast::bench
