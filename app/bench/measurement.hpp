// The measurement harness (docs/bench.md, "Measurements"): what every device measurement on the
// array board shares, one definition for `metaplast measure <kind>` and a campaign's step of that
// type. A measurement (retention, read disturb, ...) says what it measures through the hooks of
// `Measurement`; run_measurement does the rest, in this order:
//
//   1. the options are checked (Measurement::check_options), then the permission rule
//      (board::require_pulse_permission, for a measurement that pulses) before anything is
//      opened or written;
//   2. the board settings in force (command line over campaign step over station, checked against
//      the station limits: board::session_settings); with --resume DIR, the progress file of DIR
//      must name the same kind, the same options and the same settings, else nothing is sent;
//   3. the board opened, configured and activated (board::open_active_board); chip id from
//      hil::chip_id_for_board (a resume refuses another board or chip);
//   4. a fresh measurement calls start() (choose cells, program them), a resumed one restore();
//      then run_batch() until done() or a stop is requested (Ctrl-C: the batch in flight
//      finishes first). After start() and after every batch the progress file is rewritten
//      atomically, so a killed host loses at most one batch;
//   5. the board goes to its safe state (on every exit path: the board object's RAII);
//   6. write_results() writes what was measured (also when interrupted), then measurement.json
//      with status "completed" or "interrupted".
//
// Files in the output folder: measurement.json (the record), progress.json (the resume state),
// <kind>.h5, <kind>.csv, <kind>.png (+ its .gp script and plot data), and what the measurement
// adds. Layout of each: docs/bench.md, "Measurements".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/level_plot.hpp"
#include "app/bench/programmed_cells.hpp"
#include "app/board/board_session.hpp"
#include "app/live/live_feed.hpp"
#include "app/util/h5_file.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::bench {

// Who ran what on which board: the part of the record every output file carries.
struct MeasurementRecord {
  std::string kind;                     // "retention", "read-disturb"
  nlohmann::json options;               // the measurement's options, as compared on resume
  instruments::BoardInfo board;         // from IDENTIFY at the (last) start
  std::string chip_id;                  // hil::chip_id_for_board
  std::string address;                  // the board's resolved address
  instruments::BoardSettings settings;  // in force during the measurement
  std::string started, finished;        // ISO 8601 UTC; started is that of the first run
  std::string status;                   // "running", "completed", "interrupted", "failed"
  int resumed = 0;                      // how many times the measurement was resumed
  // A measurement of a saved file without a board (cell-map --from): {"path" (absolute),
  // "sha256", "kind"}; then board, address and settings are empty and the files name the source
  // instead. Null for a measurement on a board.
  nlohmann::json source;
};

// "model serial (firmware F, protocol P, boot B, R x C)" for CSV headers and logs.
std::string board_line(const instruments::BoardInfo& info);
// The record's header lines for a CSV (util::CsvWriter's comment lines): "board settings: ...",
// "board: ...", "chip: ...", "measurement: <kind> <options>"; for a saved file (record.source)
// "source: <path> (<kind>, sha256 <hex>)" in place of the settings and board lines.
std::vector<std::string> csv_header_lines(const MeasurementRecord& record);
// The record as attributes of the root of an HDF5 file: kind, chip_id, board_model,
// board_serial, board_firmware, board_boot_id, started, finished, status, options (JSON text),
// and board_setting_<key> for every board setting (units in the key); for a saved file
// (record.source) source_path, source_sha256, source_kind in place of the board and settings.
void write_record_attributes(util::H5File& h5, const MeasurementRecord& record);
// The measured cells in an HDF5 file, for a level-resolved measurement: "cell" (the index 0..N-1,
// a dimension scale named "cell") and cells/row, cells/col, cells/level and cells/verify_us (its
// units attribute `verify_units`), each attached to "cell" along dimension 0. Datasets indexed
// by cell that the measurement writes afterwards attach "cell" themselves.
void write_cell_table(util::H5File& h5, const ProgrammedCells& programmed,
                      const std::string& verify_units);

// What a measurement may use while it runs (handed to its hooks).
struct MeasurementContext {
  instruments::ArrayBoard& board;
  const MeasurementRecord& record;
  // A line for the user (the terminal's progress line is cleared first; campaign logs).
  std::function<void(const std::string&)> log;
  // True once a stop was requested: a hook with a long inner loop (programming in chunks,
  // waiting for a time point) returns early and leaves the rest to the next batch.
  std::function<bool()> stop_requested;
};

// Waits on the board's own clock (ArrayBoard::uptime_ms) until it reads `uptime_ms`, polling
// with sleeps sized from the clock's measured rate (the simulated board's accelerated clock runs
// faster than the wall clock), at least every third of an armed watchdog's timeout. Returns false
// as soon as a stop is requested.
bool wait_until_board_time(MeasurementContext& context, double uptime_ms);

// `points` log-spaced whole counts from 1 to `last` (both included), distinct, ascending (fewer
// than `points` where rounding makes neighbours equal): read counts, cycle counts.
std::vector<std::uint64_t> log_spaced_counts(std::uint64_t last, std::size_t points);

// One kind of measurement. Hooks are called by run_measurement only, in the order above.
class Measurement {
 public:
  virtual ~Measurement() = default;
  virtual std::string kind() const = 0;
  // The options as recorded and compared on resume (every option, defaults included).
  virtual nlohmann::json options_json() const = 0;
  // Throws std::invalid_argument naming the option and its allowed range.
  virtual void check_options() const = 0;
  // Whether the measurement pulses cells (then it needs the permission rule); a read-only one
  // (a cell map) runs on any board without --yes.
  virtual bool pulses() const { return true; }

  // A fresh measurement on the active board: choose and prepare the cells. May end early on a
  // stop request (then done() is false and the progress file says where it stands).
  virtual void start(MeasurementContext& context) = 0;
  // Takes up the state progress_json() returned in an earlier run. Throws std::invalid_argument
  // when the state cannot be continued on this board (saying why).
  virtual void restore(const nlohmann::json& state, MeasurementContext& context) = 0;
  // The state to save: everything measured so far and where to continue.
  virtual nlohmann::json progress_json() const = 0;

  virtual bool done() const = 0;
  // One batch (one time point, one group of reads): the unit a Ctrl-C lets finish.
  virtual void run_batch(MeasurementContext& context) = 0;
  // For the progress line: batches done and in all, and what a batch is ("time point").
  virtual std::size_t batches_done() const = 0;
  virtual std::size_t batches_total() const = 0;
  virtual std::string batch_label() const = 0;

  // Writes the result files into `dir` from what was measured (possibly a part). Returns the
  // result summary for measurement.json's "result" (fitted parameters, file names, counts) and
  // puts a plot error (gnuplot missing or failing) into `plot_error` rather than throwing.
  virtual nlohmann::json write_results(const MeasurementRecord& record,
                                       const std::filesystem::path& dir,
                                       std::string& plot_error) const = 0;

  // The plot of what is measured so far, for the live view (published after every batch); the
  // same as the measurement's PNG draws. nullopt: nothing to draw yet, or a measurement whose plot
  // needs the whole measurement (then the live view shows its progress and link only).
  virtual std::optional<LevelPlot> live_plot(const MeasurementRecord& /*record*/) const {
    return std::nullopt;
  }
};

struct HarnessOptions {
  board::SessionOptions session;                // --device/--station/--record/--yes/settings
  instruments::SettingValues campaign_values;   // a campaign's and its step's board settings
  std::string chip;                             // --chip ("": station's, else from the board)
  std::filesystem::path out;                    // output folder of a fresh measurement
  std::optional<std::filesystem::path> resume;  // --resume DIR: continue the measurement there
  // Polled between batches (and by long hooks); the CLI passes its Ctrl-C flag.
  std::function<bool()> stop_requested;
  // Lines for the user; default: stderr. The progress line (ETA) shows on a terminal only.
  std::function<void(const std::string&)> log;
  bool progress_line = true;
  // The live view to publish to (--live): progress, live_plot() and the link after every batch;
  // null: none. Publishing never waits on a browser.
  live::LiveFeed* live = nullptr;
};

enum class MeasurementStatus { completed, interrupted };

struct MeasurementOutcome {
  MeasurementStatus status = MeasurementStatus::completed;
  std::filesystem::path dir;  // where the files are
  MeasurementRecord record;
  nlohmann::json result;   // write_results' summary
  std::string plot_error;  // "" when the plot was drawn
  // For an interrupted run: "run the same command again with --resume DIR" (the user's line).
  std::string resume_hint;
};

// Runs `measurement` as described at the top. Throws std::invalid_argument for bad options, a
// refused permission, a resume that does not match; instruments errors (limits, link, board)
// propagate after the board is safe and the measurement.json says "failed" (when the folder
// exists). The files of an interrupted run are written and the outcome says so.
MeasurementOutcome run_measurement(Measurement& measurement, const HarnessOptions& options);

// A measurement of a saved file, no board (cell-map --from): `measurement` has its data already
// (its own loader); `record` names the kind, options, chip and source. The output folder `out`
// is prepared as for a fresh run_measurement (refused when it holds a measurement), then
// write_results and measurement.json with status "completed".
MeasurementOutcome run_measurement_without_board(Measurement& measurement, MeasurementRecord record,
                                                 const std::filesystem::path& out);

// The files of a measurement folder.
inline constexpr const char* kRecordFile = "measurement.json";
inline constexpr const char* kProgressFile = "progress.json";

}  // namespace metaplast::bench
