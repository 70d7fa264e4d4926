// Fitting a device model (devices::Calibration, docs/calibration.md) from a characterisation: N cells
// programmed K times to each level and read back, plus repeated reads of a few cells without
// reprogramming (read noise). Pure statistics: no I/O, no board.
//
// The model being fitted (docs/calibration.md): a sample of cell c at an HCS level is
//   G = m (1 + d2d z_c) + c2c e + read noise,
// so with K cycles per cell the spreads separate:
//   pooled within-cell variance  s_w^2 = c2c^2 + read^2          (each cell's mean removed)
//   variance of the cell means   s_m^2 = (m d2d)^2 + s_w^2 / K
// and c2c^2 = s_w^2 - read^2 (read^2 from the repeated reads), (m d2d)^2 = s_m^2 - s_w^2 / K.
// The LCS is log-normal: the same in ln G.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "devices/calibration.hpp"
#include "instruments/board_types.hpp"

namespace metaplast::hil {

// The samples of one programming level, in microsiemens. Cells are in the same order in every
// level of one characterisation (cell i of level 0 is cell i of level 5).
struct LevelSamples {
  int level = 0;              // protocol level: 0 = LCS, 1..N = HCS by I_CC
  double icc_ua = 0;          // compliance current (0 for the LCS)
  double gate_voltage_v = 0;  // word-line voltage of the SET (0 for the LCS)
  // by_cell[i][k]: cell i, cycle k (program then read). Every cell has the same number of cycles.
  std::vector<std::vector<double>> by_cell;
  // read_repeats[j][r]: repeated reads of one programmed state of a cell (no reprogramming
  // between them). May be empty (read noise then not measured at this level).
  std::vector<std::vector<double>> read_repeats;

  bool log_normal() const { return level == 0; }
};

// What the fit found at one level. For the LCS (log_normal) the sigmas are in ln G; for HCS
// levels in uS.
struct LevelFit {
  int level = 0;
  double icc_ua = 0;
  double gate_voltage_v = 0;
  bool log_normal = false;
  std::size_t cells = 0;
  std::size_t cycles = 0;
  double median_us = 0;         // median of all samples
  double within_sigma = 0;      // sqrt(pooled within-cell variance): c2c and read noise together
  double cell_means_sigma = 0;  // standard deviation of the per-cell means
  double read_sigma = 0;        // read noise measured from repeats (0 if not measured)
  bool read_measured = false;
  std::size_t read_cells = 0, read_repeats = 0;
  double c2c_sigma = 0;  // cycle-to-cycle, read noise removed (clamped at 0)
  double d2d_sigma = 0;  // device-to-device sigma of the cell median (clamped at 0)
  double d2d_sigma_rel() const { return median_us > 0 ? d2d_sigma / median_us : 0.0; }
};

// Read noise sigma = relative * G + absolute_us, fitted on the repeatedly read cells of every
// level (each cell: its mean G and its read sigma).
struct ReadNoiseFit {
  bool measured = false;
  double relative = 0;
  double absolute_us = 0;
  std::size_t levels_used = 0;
};

// c2c_sigma_us = intercept_us + slope * G_us across the HCS levels (the literature's linear form,
// e.g. 4.78 - 0.0091 G); a summary only, the calibration keeps one sigma per level.
struct LineFit {
  double intercept_us = 0;
  double slope = 0;
  bool valid = false;
};

struct CalibrationFit {
  std::vector<LevelFit> levels;  // in the order given (level 0 = LCS first)
  ReadNoiseFit read_noise;
  LineFit c2c_line;
};

// Fits one level. Throws std::invalid_argument if there are fewer than 2 cells or 2 cycles, if
// the cells have different numbers of cycles, or (LCS) a sample is not positive.
LevelFit fit_level(const LevelSamples& samples);

// Fits every level, then the read-noise line and the c2c line. Throws as fit_level does.
CalibrationFit fit_calibration(const std::vector<LevelSamples>& levels);

// A cell whose behaviour does not belong to the population (stuck, or outside the level's
// distribution): to be excluded from the fit and recorded as a bad cell.
struct CellFinding {
  std::size_t cell = 0;  // index into LevelSamples::by_cell
  std::string reason;    // "stuck_lcs", "stuck_hcs" or "outlier"
  std::string detail;    // human-readable: which level, how far
};

// Screens the cells: a cell whose mean at the highest HCS level stays below the midpoint
// between the LCS and level-1 medians never SETs (stuck_lcs); one whose LCS mean is above it
// never RESETs (stuck_hcs); a cell whose mean at some level is more than `outlier_z` robust
// standard deviations (1.4826 x MAD of the cell means; ln G for the LCS) from the median of the
// cell means is an outlier. Returns the flagged cells, each once, in cell order.
std::vector<CellFinding> screen_cells(const std::vector<LevelSamples>& levels,
                                      double outlier_z = 6.0);

// The same samples without the given cells (indices into by_cell; read_repeats are kept for
// cells j with j < read_repeats.size() that are not excluded, assuming repeats belong to the
// first cells of by_cell in order).
std::vector<LevelSamples> without_cells(const std::vector<LevelSamples>& levels,
                                        const std::vector<std::size_t>& excluded);

// The fitted model as a calibration: levels (I_CC, gate voltage, median, c2c, d2d), the LCS and
// the read noise (if measured) come from the fit; every other field (relaxation, endurance,
// yield, forming, switching, pristine, and read noise if not measured) is taken from `base`.
// The read voltage and the reference SET and RESET pulses (the pulses the medians belong to,
// docs/calibration.md) are those of `settings`, the board settings of the measurement: each pulse
// as its effective amplitude at the base's reference width, never below the switching threshold.
// `fit.levels` must hold the LCS (level 0) and HCS levels 1..N in order. The result is
// validated (throws devices::CalibrationError naming the field if the data give a model the schema
// refuses, e.g. medians not increasing).
devices::Calibration to_calibration(const CalibrationFit& fit, const devices::Calibration& base,
                                    const devices::CalibrationIdentity& identity,
                                    const instruments::BoardSettings& settings);

// Median of a copy of the values (NaN if empty).
double median_of(std::vector<double> values);

}  // namespace metaplast::hil
