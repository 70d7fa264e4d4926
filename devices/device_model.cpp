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
  const auto& levels = calibration_.hcs_levels;
  double median;
  if (icc_ua <= levels.front().icc_ua) {
    median = levels.front().median_conductance_us * icc_ua / levels.front().icc_ua;
  } else {
    median = interpolate(
        levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
        [&](std::size_t i) { return levels[i].median_conductance_us; }, icc_ua);
  }
  const double d2d = interpolate(
      levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
      [&](std::size_t i) { return levels[i].d2d_sigma_rel; },
      std::clamp(icc_ua, levels.front().icc_ua, levels.back().icc_ua));
  return median * (1.0 + d2d * traits.hcs_d2d_z);
}

double DeviceModel::hcs_c2c_sigma_us(double icc_ua) const {
  const auto& levels = calibration_.hcs_levels;
  return std::max(0.0, interpolate(
                           levels.size(), [&](std::size_t i) { return levels[i].icc_ua; },
                           [&](std::size_t i) { return levels[i].c2c_sigma_us; },
                           std::clamp(icc_ua, levels.front().icc_ua, levels.back().icc_ua)));
}

double DeviceModel::draw_hcs_us(double icc_ua, const CellTraits& traits, RandomStream& rng) const {
  const double g = rng.normal(hcs_median_us(icc_ua, traits), hcs_c2c_sigma_us(icc_ua));
  return std::max(g, calibration_.lcs.median_conductance_us);
}

double DeviceModel::draw_lcs_us(const CellTraits& traits, RandomStream& rng) const {
  const auto& lcs = calibration_.lcs;
  const double median = lcs.median_conductance_us * std::exp(lcs.d2d_sigma_ln * traits.lcs_d2d_z);
  return rng.lognormal(median, lcs.c2c_sigma_ln);
}

double DeviceModel::draw_relaxation_step_us(double programmed_us, RandomStream& rng) const {
  const auto& r = calibration_.relaxation;
  const double z = rng.normal();
  return programmed_us * (r.step_mean_rel + r.step_sigma_rel * z);
}

double DeviceModel::relaxed_us(double programmed_us, double step_us, double elapsed_s) const {
  const auto& r = calibration_.relaxation;
  if (!r.enabled || elapsed_s <= 0.0) return programmed_us;
  const double drift =
      1.0 - r.drift_per_decade_rel * std::log10(1.0 + elapsed_s / r.drift_reference_s);
  const double g =
      programmed_us * drift + step_us * (1.0 - std::exp(-elapsed_s / r.step_time_constant_s));
  return std::max(g, 0.0);
}

double DeviceModel::draw_read_us(double true_us, RandomStream& rng) const {
  const auto& n = calibration_.read_noise;
  const double sigma = n.relative * true_us + n.absolute_us;
  return std::max(0.0, rng.normal(true_us, sigma));
}

}  // namespace metaplast::devices
