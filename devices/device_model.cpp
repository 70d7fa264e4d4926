#include "devices/device_model.hpp"

#include <algorithm>
#include <cmath>

namespace metaplast::devices {

DeviceModel::DeviceModel(Calibration calibration) : calibration_(std::move(calibration)) {
  calibration_.validate();
}

CellTraits DeviceModel::draw_traits(RandomStream& rng) const {
  const auto& c = calibration_;
  CellTraits t;
  t.hcs_d2d_z = rng.normal();
  t.lcs_d2d_z = rng.normal();
  t.forming_voltage_v = rng.normal(c.forming.median_voltage_v, c.forming.sigma_v);
  t.endurance_cycles = rng.lognormal(c.endurance.median_cycles, c.endurance.sigma_ln);
  t.pristine_conductance_us = rng.lognormal(c.pristine.median_conductance_us, c.pristine.sigma_ln);
  t.wears_out_stuck_hcs = rng.bernoulli(c.endurance.stuck_hcs_probability);
  const bool defective = rng.bernoulli(c.yield.defect_fraction);
  const double kind = rng.uniform();
  if (defective) {
    const double stuck_share = 1.0 - c.yield.unformable_share;
    if (kind < c.yield.unformable_share) {
      t.defect = CellDefect::unformable;
    } else if (kind < c.yield.unformable_share + stuck_share / 2) {
      t.defect = CellDefect::stuck_hcs;
    } else {
      t.defect = CellDefect::stuck_lcs;
    }
  }
  return t;
}

namespace {

// Piecewise-linear interpolation through (x[i], y[i]), x strictly increasing, linear
// extrapolation with the end segments (or a single point's proportional line).
template <typename GetX, typename GetY>
double interpolate(std::size_t n, GetX x, GetY y, double at) {
  if (n == 1) return x(0) != 0.0 ? y(0) * at / x(0) : y(0);
  std::size_t i = 1;
  while (i + 1 < n && at > x(i)) ++i;
  const double x0 = x(i - 1), x1 = x(i), y0 = y(i - 1), y1 = y(i);
  return y0 + (y1 - y0) * (at - x0) / (x1 - x0);
}

}  // namespace

double DeviceModel::compliance_current_ua(double gate_voltage_v) const {
  const auto& levels = calibration_.hcs_levels;
  const double icc = interpolate(
      levels.size(), [&](std::size_t i) { return levels[i].gate_voltage_v; },
      [&](std::size_t i) { return levels[i].icc_ua; }, gate_voltage_v);
  return std::max(0.0, icc);
}

double DeviceModel::hcs_median_us(double icc_ua, const CellTraits& traits) const {
  const HcsDrawParameters at = hcs_draw_parameters(icc_ua);
  return at.median_us * (1.0 + at.d2d_sigma_rel * traits.hcs_d2d_z);
}

double DeviceModel::hcs_c2c_sigma_us(double icc_ua) const {
  const auto& levels = calibration_.hcs_levels;
  return std::max(0.0, interpolate(
                           levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
                           [&](std::size_t i) { return levels[i].c2c_sigma_us; },
                           std::clamp(icc_ua, levels.front().icc_ua, levels.back().icc_ua)));
}

HcsDrawParameters DeviceModel::hcs_draw_parameters(double icc_ua) const {
  const auto& levels = calibration_.hcs_levels;
  HcsDrawParameters at;
  if (icc_ua <= levels.front().icc_ua) {
    at.median_us = levels.front().median_conductance_us * icc_ua / levels.front().icc_ua;
  } else {
    at.median_us = interpolate(
        levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
        [&](std::size_t i) { return levels[i].median_conductance_us; }, icc_ua);
  }
  at.d2d_sigma_rel = interpolate(
      levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
      [&](std::size_t i) { return levels[i].d2d_sigma_rel; },
      std::clamp(icc_ua, levels.front().icc_ua, levels.back().icc_ua));
  at.c2c_sigma_us = hcs_c2c_sigma_us(icc_ua);
  return at;
}

double DeviceModel::draw_hcs_us(double icc_ua, const CellTraits& traits, RandomStream& rng,
                                double median_scale) const {
  return draw_hcs_us(hcs_draw_parameters(icc_ua), traits.hcs_d2d_z, rng, median_scale);
}

double DeviceModel::draw_hcs_us(const HcsDrawParameters& at, double hcs_d2d_z, RandomStream& rng,
                                double median_scale) const {
  const double median = at.median_us * (1.0 + at.d2d_sigma_rel * hcs_d2d_z);
  const double g = rng.normal(median * median_scale, at.c2c_sigma_us);
  return std::max(g, calibration_.lcs.median_conductance_us);
}

double DeviceModel::draw_lcs_us(double lcs_d2d_z, RandomStream& rng, double median_scale) const {
  const auto& lcs = calibration_.lcs;
  const double median = lcs.median_conductance_us * std::exp(lcs.d2d_sigma_ln * lcs_d2d_z);
  return rng.lognormal(median * median_scale, lcs.c2c_sigma_ln);
}

namespace {

// V + k log10(w / w_ref): the voltage-time trade-off of ionic switching (a decade longer pulse
// acts like k volts more). Exactly `volts` at the reference width.
double effective_voltage_v(double volts, double width_ns, double v_per_decade, double ref_ns) {
  return volts + v_per_decade * std::log10(width_ns / ref_ns);
}

// The normal CDF truncated at +-3 sigma and rescaled to [0, 1]: exactly 0 and 1 outside, so a
// pulse well clear of the transition needs no random decision.
double truncated_normal_cdf(double z) {
  constexpr double kCut = 3.0;
  if (z <= -kCut) return 0.0;
  if (z >= kCut) return 1.0;
  const auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  return (phi(z) - phi(-kCut)) / (phi(kCut) - phi(-kCut));
}

}  // namespace

double DeviceModel::set_probability(double bl_v, double width_ns) const {
  const auto& sw = calibration_.switching;
  if (width_ns < sw.min_pulse_width_ns) return 0.0;
  const double v =
      effective_voltage_v(bl_v, width_ns, sw.width_v_per_decade, sw.reference_width_ns);
  if (v >= sw.set_threshold_bl_v) return 1.0;
  if (sw.set_transition_v <= 0.0) return 0.0;
  // The transition spans -3..+3 sigma below the threshold.
  const double sigma = sw.set_transition_v / 6.0;
  return truncated_normal_cdf((v - (sw.set_threshold_bl_v - 3.0 * sigma)) / sigma);
}

double DeviceModel::set_overdrive_factor(double bl_v, double width_ns) const {
  const auto& sw = calibration_.switching;
  const double v =
      effective_voltage_v(bl_v, width_ns, sw.width_v_per_decade, sw.reference_width_ns);
  return std::max(0.1, 1.0 + sw.set_overdrive_rel_per_v * (v - sw.set_reference_bl_v));
}

bool DeviceModel::reset_switches(double sl_v, double width_ns) const {
  const auto& sw = calibration_.switching;
  return width_ns >= sw.min_pulse_width_ns &&
         effective_voltage_v(sl_v, width_ns, sw.width_v_per_decade, sw.reference_width_ns) >=
             sw.reset_threshold_sl_v;
}

double DeviceModel::reset_depth_factor(double sl_v, double width_ns) const {
  const auto& sw = calibration_.switching;
  const double v =
      effective_voltage_v(sl_v, width_ns, sw.width_v_per_decade, sw.reference_width_ns);
  return std::exp(-sw.reset_depth_ln_per_v * (v - sw.reset_reference_sl_v));
}

double DeviceModel::forming_probability(double bl_v, double width_ns,
                                        double forming_voltage_v) const {
  const auto& f = calibration_.forming;
  if (width_ns < calibration_.switching.min_pulse_width_ns) return 0.0;
  const double v = effective_voltage_v(bl_v, width_ns, f.width_v_per_decade, f.reference_width_ns);
  if (f.pulse_sigma_v <= 0.0) return v >= forming_voltage_v ? 1.0 : 0.0;
  return truncated_normal_cdf((v - forming_voltage_v) / f.pulse_sigma_v);
}

double DeviceModel::read_disturb_rel(double read_v) const {
  const auto& d = calibration_.read_disturb;
  if (!(read_v > d.onset_voltage_v)) return 0.0;
  // Capped at doubling per read, far beyond anything a real read does, so a steep fit stays finite.
  return std::min(1.0, d.rel_per_read * std::expm1((read_v - d.onset_voltage_v) / d.slope_v));
}

double DeviceModel::draw_relaxation_step_us(double programmed_us, RandomStream& rng) const {
  const auto& r = calibration_.relaxation;
  const double z = rng.normal();
  return programmed_us * (r.step_mean_rel + r.step_sigma_rel * z);
}

RelaxationFactors DeviceModel::relaxation_factors(double elapsed_s) const {
  const auto& r = calibration_.relaxation;
  RelaxationFactors f;
  if (!r.enabled || elapsed_s <= 0.0) return f;
  f.unchanged = false;
  f.drift = 1.0 - r.drift_per_decade_rel * std::log10(1.0 + elapsed_s / r.drift_reference_s);
  f.rise = 1.0 - std::exp(-elapsed_s / r.step_time_constant_s);
  return f;
}

double DeviceModel::draw_read_us(double true_us, RandomStream& rng) const {
  const auto& n = calibration_.read_noise;
  const double sigma = n.relative * true_us + n.absolute_us;
  return std::max(0.0, rng.normal(true_us, sigma));
}

}  // namespace metaplast::devices
