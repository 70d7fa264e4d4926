// The characterisation campaign (the paper's Fig. 4b): N formed cells are programmed K times to
// each level (RESET then SET at each I_CC table entry; SET then RESET for the LCS) and read back
// after every programming, then a subset is read R more times without reprogramming (read
// noise). The samples are fitted (app/hil/calibration_fit.hpp) into a calibration file in the
// simulated board's schema (docs/calibration.md), which the quantizer and the virtual devices
// load too.
//
// Forming is never a side effect: cells are only picked among those that read as formed; the
// unformed ones are reported (the board refuses pulses on them anyway) and formed only by an
// explicit `metaplast board form`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "app/hil/calibration_fit.hpp"
#include "app/live/live_updates.hpp"
#include "devices/calibration.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::hil {

struct CampaignProgress {
  std::size_t steps_done = 0;  // level-cycles done (+ read-noise steps)
  std::size_t steps_total = 0;
  int level = 0;  // level being measured
};

// One line per finished level, e.g. "level 3 (I_CC 30.0 uA): 10 cycles x 1000 cells, median ..."
using CampaignLog = std::function<void(const std::string&)>;

// Upper bounds of the options (command line and campaign files; check_options enforces them):
// four times one board (16,384 cells), small enough that no count overflows.
inline constexpr std::int64_t kMaxCharacterizeCells = 65'536;
inline constexpr std::int64_t kMaxCharacterizeCycles = 100'000;
inline constexpr std::int64_t kMaxReadRepeats = 10'000;

struct CharacterizeOptions {
  // Defaults: the smallest spread to separate is the device-to-device one of the lowest level
  // (3 % of 20 uS under a 4.6 uS cycle-to-cycle sigma); 4000 x 30 measures it to about 4 %
  // (1000 x 10: about 15 %). Endurance cost: 2 pulses per sample, 540 per cell.
  std::size_t cells = 4000;       // N: cells measured
  std::size_t cycles = 30;        // K: programming cycles per level and cell (>= 2)
  std::size_t read_repeats = 10;  // R: extra reads per level of the read-noise subset (0: none)
  std::size_t read_cells = 200;   // size of that subset (at most N)
  std::uint64_t seed = 1;         // which of the formed cells are picked
  // Cells programmed and read back together: smaller chunks read each cell sooner after its
  // pulse (less relaxation in the samples), larger ones need fewer frames.
  std::size_t chunk_cells = 256;
  // A cell reading at least this counts as formed; 0: 0.2 x the LCS target from identify (as
  // `metaplast board form` decides success).
  double formed_threshold_us = 0;
  std::set<std::uint32_t> excluded_cells;  // row * cols + col: known bad cells, never picked
  std::function<void(const CampaignProgress&)> progress;
  CampaignLog log;
  // After every level: the levels measured so far (the live view's CDFs: cdf_plot).
  std::function<void(const std::vector<LevelSamples>&)> levels_done;
};

// Which cells of the array read as formed.
struct CellScan {
  double threshold_us = 0;
  std::vector<instruments::Cell> formed;    // read >= threshold and not excluded
  std::vector<instruments::Cell> unformed;  // read below the threshold: never pulsed
  std::vector<instruments::Cell> excluded;  // formed but in excluded_cells
};

// Reads the whole array (the board must be active) and sorts the cells.
CellScan scan_cells(instruments::ArrayBoard& board, double threshold_us,
                    const std::set<std::uint32_t>& excluded_cells);

// The raw outcome of a campaign.
struct Characterization {
  instruments::BoardInfo board;
  std::string started, finished;  // ISO 8601 UTC
  instruments::BoardSettings settings;  // the board's settings during the measurement
  std::size_t cycles = 0;
  std::uint64_t seed = 0;
  CellScan scan;
  std::vector<instruments::Cell> cells;  // measured, in sample order; the first
                                         // `read_cells` of them are the read-noise subset
  std::size_t read_cells = 0;
  std::size_t read_repeats = 0;
  std::vector<LevelSamples> levels;            // level 0 (LCS), 1..N
  std::vector<std::uint64_t> pulses_per_cell;  // SET + RESET pulses applied, same order as cells
};

// Checks the options; throws std::invalid_argument saying which option is wrong and why.
void check_options(const CharacterizeOptions& options);

// Runs the campaign on an active board. Throws std::invalid_argument for bad options or when
// fewer than N cells read as formed (naming how many did, and `metaplast board form`);
// board errors propagate (the board is left in a safe state by its driver).
Characterization run_characterization(instruments::ArrayBoard& board,
                                      const CharacterizeOptions& options);

// The fit of a campaign: cells that are stuck or far outside their level's distribution are
// excluded from the fit (and listed), the rest fitted and mapped onto a calibration.
struct CharacterizationResult {
  std::vector<CellFinding> bad_cells;  // indices into Characterization::cells
  CalibrationFit fit;
  devices::Calibration calibration;
};
CharacterizationResult fit_characterization(const Characterization& data,
                                            const devices::Calibration& base,
                                            const devices::CalibrationIdentity& identity,
                                            double outlier_z = 6.0);

// Output files (each throws std::runtime_error naming the file if it cannot be written). The CSV
// files start with one comment line "# board settings: ..." (the settings in force).
// samples.csv: cell,row,col,cycle,level,icc_ua,conductance_us (one row per programmed read).
void write_samples_csv(const Characterization& data, const std::filesystem::path& path);
// cdf.csv: level,icc_ua,conductance_us,cumulative_fraction, sorted within each level; the
// fraction of sample i (0-based) of n is (i + 0.5) / n.
void write_cdf_csv(const Characterization& data, const std::filesystem::path& path);
// The gnuplot script that draws the CDF (one curve per level, log conductance axis) from
// `plot_data` (gnuplot blocks, one per level in order: conductance_us cumulative_fraction).
// It names `plot_data` and `png` by file name only, so it runs in their folder (`gnuplot cdf.gp`
// there redraws the plot); board model and serial are quoted as gnuplot text (inert).
std::string cdf_gnuplot_script(const Characterization& data, const std::filesystem::path& plot_data,
                               const std::filesystem::path& png);
// Writes cdf_plot.dat (at most ~2000 points per level) and cdf.gp next to `png` (atomically;
// throws std::runtime_error naming a file that cannot be written) and runs gnuplot there, without
// a shell (app/util/gnuplot.hpp). Returns an empty string on success, else what went wrong (gnuplot missing or
// failing): the caller reports it, the data files are unaffected.
std::string plot_cdf(const Characterization& data, const std::filesystem::path& png);
// The earlier signature (the CSV is not read: the plot has its own decimated data).
inline std::string plot_cdf(const Characterization& data, const std::filesystem::path& /*cdf_csv*/,
                            const std::filesystem::path& png) {
  return plot_cdf(data, png);
}
// calibration.json: the calibration (sim schema) plus a "characterization" section (ignored by
// calibration readers) with the campaign's sizes, the per-level raw statistics, the read-noise
// and c2c line fits, the cells excluded and the fields not measured.
void write_calibration(const Characterization& data, const CharacterizationResult& result,
                       const std::filesystem::path& path);

// The CDF of every level's programmed samples (not the read-noise repeats), on a log
// conductance axis: one curve per level, at most `points` quantiles each, for the live view.
live::Plot cdf_plot(const std::vector<LevelSamples>& levels, const std::string& title,
                    std::size_t points = 200);

// A short per-level table (for the terminal and the experiment notes).
std::string summary_table(const CharacterizationResult& result);

}  // namespace metaplast::hil
