// The device model of one chip on one board, in engineering units: what the simulated board uses
// as its physics and what the characterisation campaign fits from measured data. One structure,
// stored as versioned JSON; the schema is written down in docs/calibration.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace metaplast::devices {

// Thrown when a calibration file cannot be read or does not follow the schema. The message names
// the file, the JSON path (e.g. /hcs_levels/3/median_conductance_us) and what was expected.
class CalibrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Default cycle-to-cycle spread of the HCS (1T1R HfO2 fit, Milo et al., IRPS 2021):
// sigma_G[uS] = 4.78 - 0.0091 G[uS].
double default_c2c_sigma_us(double median_conductance_us);

// One high-conductance level, set by the compliance current I_CC (which the gate voltage sets).
struct HcsLevel {
  double icc_ua = 0.0;                 // compliance current
  double gate_voltage_v = 0.0;         // WL voltage that gives this I_CC during SET
  double median_conductance_us = 0.0;  // median over cells and cycles
  double c2c_sigma_us = 0.0;           // cycle-to-cycle standard deviation (Gaussian in G)
  double d2d_sigma_rel = 0.0;          // device-to-device spread of the per-cell median, relative
};

// Low-conductance state after RESET: log-normal.
struct LcsModel {
  double median_conductance_us = 3.0;
  double c2c_sigma_ln = 0.5;  // cycle-to-cycle, natural-log units
  double d2d_sigma_ln = 0.1;  // per-cell offset of ln(median)
};

// Read noise: Gaussian, sigma = relative * G + absolute_us (larger, relatively, at low G).
struct ReadNoiseModel {
  double relative = 0.01;
  double absolute_us = 0.05;
};

// Conductance after programming, t seconds of device time later:
//   G(t) = G0 * (1 - drift_per_decade_rel * log10(1 + t / drift_reference_s))
//          + step * (1 - exp(-t / step_time_constant_s)),
// with step ~ Normal(step_mean_rel * G0, step_sigma_rel * G0) drawn when the cell is programmed.
// A verify read microseconds after the pulse sees about G0; later reads see the relaxed value.
struct RelaxationModel {
  bool enabled = true;
  double step_mean_rel = -0.01;
  double step_sigma_rel = 0.03;
  double step_time_constant_s = 1.0;
  double drift_per_decade_rel = 0.004;
  double drift_reference_s = 1.0e-3;
};

// Per-cell endurance: the cell fails after a number of programming operations (SET or RESET
// pulses) drawn log-normal; a failed cell is stuck at HCS (probability stuck_hcs_probability)
// or at LCS and no longer switches.
struct EnduranceModel {
  double median_cycles = 3.0e5;
  double sigma_ln = 0.7;
  double stuck_hcs_probability = 0.5;
};

// Manufacturing yield: a fraction of defective cells, of which unformable_share never forms and
// the rest are stuck from the start (half at HCS, half at LCS).
struct YieldModel {
  double defect_fraction = 0.001;
  double unformable_share = 0.5;
};

// Unformed cells: very low conductance, log-normal.
struct PristineModel {
  double median_conductance_us = 0.05;
  double sigma_ln = 0.5;
};

// Forming (docs/calibration.md, "The simulated device's response to pulse conditions"): each
// cell has its own forming voltage V_f (Gaussian over cells), the median of its per-pulse forming
// voltage at a pulse of reference_width_ns. A pulse of BL voltage V and width w acts as
// V_eff = V + width_v_per_decade * log10(w / reference_width_ns) (a longer pulse forms at a lower
// voltage); it forms the cell with probability P = Phi_3((V_eff - V_f) / pulse_sigma_v) (normal
// CDF truncated at +-3 sigma; a step at V_f when pulse_sigma_v = 0). The firmware calls a cell
// formed when a read gives at least success_conductance_us.
struct FormingModel {
  double median_voltage_v = 3.0;
  double sigma_v = 0.15;
  double success_conductance_us = 10.0;
  double reference_width_ns = 1000.0;
  double width_v_per_decade = 0.15;
  double pulse_sigma_v = 0.0;
};

// SET and RESET (docs/calibration.md, "The simulated device's response to pulse conditions").
// A pulse of amplitude V and width w acts as V_eff = V + width_v_per_decade *
// log10(w / reference_width_ns); pulses shorter than min_pulse_width_ns never switch.
// SET switches with probability 1 at V_eff >= set_threshold_bl_v, 0 below
// set_threshold_bl_v - set_transition_v, and a truncated-normal S-curve in between; the median
// conductance reached is the level's (from I_CC) times 1 + set_overdrive_rel_per_v *
// (V_eff - set_reference_bl_v). RESET needs V_eff >= reset_threshold_sl_v; the LCS median reached
// is the calibrated one times exp(-reset_depth_ln_per_v * (V_eff - reset_reference_sl_v)): a
// stronger RESET goes deeper, a weak one leaves an intermediate conductance. The reference pulses
// (amplitude, reference_width_ns) are the ones the medians were measured with: the board defaults.
struct SwitchingModel {
  double set_threshold_bl_v = 0.9;
  double reset_threshold_sl_v = 1.1;
  double min_pulse_width_ns = 10.0;
  double reference_width_ns = 100.0;
  double width_v_per_decade = 0.1;
  double set_transition_v = 0.3;
  double set_reference_bl_v = 1.2;
  double set_overdrive_rel_per_v = 0.05;
  double reset_reference_sl_v = 1.5;
  double reset_depth_ln_per_v = 3.0;
};

// Read disturb: every read of a formed cell at read voltage V multiplies its conductance by
// 1 + delta(V), delta(V) = rel_per_read * (exp((V - onset_voltage_v) / slope_v) - 1) above the
// onset and 0 at or below it (a weak SET in the read's polarity).
struct ReadDisturbModel {
  double onset_voltage_v = 0.3;
  double slope_v = 0.05;
  double rel_per_read = 1.0e-6;
};

// Which board and chip the calibration describes, and when/how it was made.
struct CalibrationIdentity {
  std::string board_model = "metaplast-simboard";
  std::string board_serial = "SIM-0001";
  std::string chip_id = "SIM-CHIP-0001";
  std::string date = "1970-01-01T00:00:00Z";  // ISO 8601 UTC
  std::string source = "default";             // "default", "characterization", ...
};

struct Calibration {
  // Version 2 added the pulse-condition parameters (forming widths, SET S-curve and overdrive,
  // RESET depth, read disturb); version 1 files are still read, those fields taking defaults.
  static constexpr int kSchemaVersion = 2;

  CalibrationIdentity identity;
  double read_voltage_v = 0.2;       // read voltage the level medians were measured at
  std::vector<HcsLevel> hcs_levels;  // ascending I_CC; protocol level k (1..N) = hcs_levels[k-1]
  LcsModel lcs;
  ReadNoiseModel read_noise;
  RelaxationModel relaxation;
  EnduranceModel endurance;
  YieldModel yield;
  PristineModel pristine;
  FormingModel forming;
  SwitchingModel switching;
  ReadDisturbModel read_disturb;

  // The defaults (docs/calibration.md): 8 levels I_CC = 10..80 uA -> 20..160 uS (G = I_CC / 0.5 V),
  // sigma_c2c from default_c2c_sigma_us, 3 % device-to-device, LCS 3 uS / 0.5, 0.1 % defects.
  static Calibration defaults();

  // Throws CalibrationError (with `where` as the location prefix) when a value is out of range:
  // levels not strictly increasing in I_CC, gate voltage and median, negative spreads, ...
  void validate(const std::string& where = "calibration") const;

  // Levels including the LCS, in uS: {LCS median, HCS level 1 median, ...} (the quantizer's Q_i).
  std::vector<double> level_medians_us() const;
};

// JSON text <-> Calibration. `source_name` is used in error messages (a file name).
std::string calibration_to_json(const Calibration& calibration);
Calibration calibration_from_json(const std::string& json_text,
                                  const std::string& source_name = "<string>");

// Files. save writes atomically (temporary file + rename). Errors throw CalibrationError naming
// the file.
Calibration load_calibration(const std::filesystem::path& path);
void save_calibration(const Calibration& calibration, const std::filesystem::path& path);

}  // namespace metaplast::devices
