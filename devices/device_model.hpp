// The device physics of one 1T1R HfO2 cell, from a Calibration: what a SET, RESET, FORM or read
// does to the conductance. Stateless apart from the calibration; every random draw comes from the
// caller's RandomStream, so the chip controls the order in which the stream is consumed.
#pragma once

#include <cstdint>

#include "devices/calibration.hpp"
#include "devices/random.hpp"

namespace metaplast::devices {

enum class CellDefect : std::uint8_t { none = 0, unformable = 1, stuck_hcs = 2, stuck_lcs = 3 };

// Per-cell properties fixed at manufacture.
struct CellTraits {
  double hcs_d2d_z = 0.0;  // standard normal; HCS median of this cell = median * (1 + d2d * z)
  double lcs_d2d_z = 0.0;  // standard normal; LCS median of this cell = median * exp(d2d_ln * z)
  double forming_voltage_v = 0.0;
  double endurance_cycles = 0.0;  // fails when SET + RESET pulses reach this
  double pristine_conductance_us = 0.0;
  bool wears_out_stuck_hcs = false;  // failure mode at end of life
  CellDefect defect = CellDefect::none;
};

// The SET parameters of one compliance current, worked out once for every SET at that current (the
// virtual store programs millions of devices to a handful of levels): the median over cells, the
// relative d2d spread of a cell's median and the c2c sigma.
struct HcsDrawParameters {
  double median_us = 0.0;
  double d2d_sigma_rel = 0.0;
  double c2c_sigma_us = 0.0;
};

// The relaxation of a programming `elapsed_s` ago, worked out once per elapsed time: G(t) =
// G0 * drift + step * rise, or G0 unchanged (`unchanged`: relaxation off, or no time elapsed).
struct RelaxationFactors {
  bool unchanged = true;
  double drift = 1.0;
  double rise = 0.0;
};

class DeviceModel {
 public:
  explicit DeviceModel(Calibration calibration);

  const Calibration& calibration() const { return calibration_; }

  // Draws a cell's manufacture traits (a fixed number of draws per cell: 8).
  CellTraits draw_traits(RandomStream& rng) const;

  // Compliance current set by a gate (WL) voltage: piecewise-linear through the calibrated
  // (gate_voltage_v, icc_ua) table, extrapolated linearly, never below 0.
  double compliance_current_ua(double gate_voltage_v) const;
  // The cell's median HCS conductance at a compliance current (interpolated through the table's
  // (icc_ua, median) points, extrapolated proportionally), including the cell's d2d offset.
  double hcs_median_us(double icc_ua, const CellTraits& traits) const;
  // Cycle-to-cycle sigma at a compliance current (interpolated through the table).
  double hcs_c2c_sigma_us(double icc_ua) const;
  // The three above at one compliance current (hcs_median_us = median_us * (1 + d2d_sigma_rel *
  // hcs_d2d_z)).
  HcsDrawParameters hcs_draw_parameters(double icc_ua) const;

  // One SET outcome (Gaussian in G around the cell's median times `median_scale`; 1 draw),
  // floored at the LCS median.
  double draw_hcs_us(double icc_ua, const CellTraits& traits, RandomStream& rng,
                     double median_scale = 1.0) const;
  // The same draw from parameters worked out beforehand and the cell's d2d offset z.
  double draw_hcs_us(const HcsDrawParameters& at, double hcs_d2d_z, RandomStream& rng,
                     double median_scale = 1.0) const;
  // One RESET outcome (log-normal around the cell's LCS median times `median_scale`; 1 draw).
  double draw_lcs_us(const CellTraits& traits, RandomStream& rng, double median_scale = 1.0) const {
    return draw_lcs_us(traits.lcs_d2d_z, rng, median_scale);
  }
  // The same draw from the cell's LCS d2d offset z alone.
  double draw_lcs_us(double lcs_d2d_z, RandomStream& rng, double median_scale = 1.0) const;

  // The response to pulse conditions (docs/calibration.md, "The simulated device's response to
  // pulse conditions"). Voltages in V, widths in ns. Each is a pure function of the calibration;
  // the chip draws the stochastic decisions.
  // Probability that a SET pulse switches a formed cell: exactly 1 at or above the threshold,
  // exactly 0 below threshold - transition or for a pulse shorter than min_pulse_width_ns.
  double set_probability(double bl_v, double width_ns) const;
  // The factor on the SET median for this pulse (exactly 1 at the reference pulse).
  double set_overdrive_factor(double bl_v, double width_ns) const;
  // Whether a RESET pulse switches a (working) cell.
  bool reset_switches(double sl_v, double width_ns) const;
  // The factor on the LCS median for this pulse (exactly 1 at the reference pulse).
  double reset_depth_factor(double sl_v, double width_ns) const;
  // Probability that a FORM pulse forms a cell whose forming voltage is `forming_voltage_v`.
  double forming_probability(double bl_v, double width_ns, double forming_voltage_v) const;
  // Relative conductance change of one read at `read_v` (0 at or below the onset).
  double read_disturb_rel(double read_v) const;
  // The relaxation step of a fresh programming (1 draw, also when relaxation is disabled, so that
  // switching it changes no other draw).
  double draw_relaxation_step_us(double programmed_us, RandomStream& rng) const;
  // The conductance `elapsed_s` of device time after programming to `programmed_us`.
  double relaxed_us(double programmed_us, double step_us, double elapsed_s) const {
    return relaxed_us(programmed_us, step_us, relaxation_factors(elapsed_s));
  }
  // The time-dependent part of relaxed_us, for a caller that relaxes many cells by the same time.
  RelaxationFactors relaxation_factors(double elapsed_s) const;
  static double relaxed_us(double programmed_us, double step_us, const RelaxationFactors& f) {
    if (f.unchanged) return programmed_us;
    const double g = programmed_us * f.drift + step_us * f.rise;
    return g < 0.0 ? 0.0 : g;  // std::max(g, 0.0)
  }
  // One read of a cell whose true conductance is `true_us` (1 draw); never negative.
  double draw_read_us(double true_us, RandomStream& rng) const;

 private:
  Calibration calibration_;
};

}  // namespace metaplast::devices
