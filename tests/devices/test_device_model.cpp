#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "devices/device_model.hpp"

using namespace metaplast::devices;

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean_of(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double stddev_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

Calibration quiet_calibration() {
  Calibration c = Calibration::defaults();
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  c.endurance.median_cycles = 1e12;
  return c;
}

}  // namespace

TEST_CASE("SET draws: per-level medians over cells and c2c spread match the calibration",
          "[physics]") {
  const Calibration cal = quiet_calibration();
  const DeviceModel model(cal);
  // Both ways of drawing normals (the simulated board's and the virtual store's).
  const NormalMethod normals = GENERATE(NormalMethod::box_muller, NormalMethod::ziggurat);
  RandomStream rng(11, normals);
  std::vector<CellTraits> cells;
  for (int i = 0; i < 4000; ++i) cells.push_back(model.draw_traits(rng));

  for (const auto& level : cal.hcs_levels) {
    // One SET per cell: device-to-device and cycle-to-cycle together; the median is the level's.
    std::vector<double> population;
    for (const auto& t : cells) population.push_back(model.draw_hcs_us(level.icc_ua, t, rng));
    CHECK(median_of(population) == Approx(level.median_conductance_us).epsilon(0.02));
    const double d2d_us = level.d2d_sigma_rel * level.median_conductance_us;
    const double expected_total = std::hypot(level.c2c_sigma_us, d2d_us);
    CHECK(stddev_of(population) == Approx(expected_total).epsilon(0.08));

    // Many SETs of one cell: the spread is the cycle-to-cycle sigma alone, around that cell's
    // own median.
    std::vector<double> cycles;
    for (int k = 0; k < 4000; ++k) cycles.push_back(model.draw_hcs_us(level.icc_ua, cells[7], rng));
    CHECK(stddev_of(cycles) == Approx(level.c2c_sigma_us).epsilon(0.08));
    CHECK(mean_of(cycles) == Approx(model.hcs_median_us(level.icc_ua, cells[7])).epsilon(0.01));
  }
}

TEST_CASE("explicit gate voltages interpolate the I_CC table", "[physics]") {
  const Calibration cal = quiet_calibration();
  const DeviceModel model(cal);
  const auto& l2 = cal.hcs_levels[2];
  const auto& l3 = cal.hcs_levels[3];
  CHECK(model.compliance_current_ua(l2.gate_voltage_v) == Approx(l2.icc_ua));
  const double mid = model.compliance_current_ua(0.5 * (l2.gate_voltage_v + l3.gate_voltage_v));
  CHECK(mid > l2.icc_ua);
  CHECK(mid < l3.icc_ua);
  CHECK(model.compliance_current_ua(0.0) == 0.0);
}

TEST_CASE("RESET draws are log-normal around the LCS median", "[physics]") {
  const Calibration cal = quiet_calibration();
  const DeviceModel model(cal);
  // Both ways of drawing normals (the simulated board's and the virtual store's).
  const NormalMethod normals = GENERATE(NormalMethod::box_muller, NormalMethod::ziggurat);
  RandomStream rng(5, normals);
  std::vector<double> logs;
  for (int i = 0; i < 8000; ++i) {
    const CellTraits t = model.draw_traits(rng);
    logs.push_back(std::log(model.draw_lcs_us(t, rng)));
  }
  CHECK(std::exp(median_of(logs)) == Approx(cal.lcs.median_conductance_us).epsilon(0.03));
  CHECK(stddev_of(logs) ==
        Approx(std::hypot(cal.lcs.c2c_sigma_ln, cal.lcs.d2d_sigma_ln)).epsilon(0.05));
  // Symmetric in ln: log-normal, not Gaussian in G.
  CHECK(std::abs(mean_of(logs) - median_of(logs)) < 0.02);
}

TEST_CASE("read noise is about 1 % of G plus a floor", "[physics]") {
  const Calibration cal = quiet_calibration();
  const DeviceModel model(cal);
  // Both ways of drawing normals (the simulated board's and the virtual store's).
  const NormalMethod normals = GENERATE(NormalMethod::box_muller, NormalMethod::ziggurat);
  RandomStream rng(3, normals);
  for (double g : {5.0, 100.0}) {
    std::vector<double> reads;
    for (int i = 0; i < 5000; ++i) reads.push_back(model.draw_read_us(g, rng));
    const double expected = cal.read_noise.relative * g + cal.read_noise.absolute_us;
    CHECK(mean_of(reads) == Approx(g).epsilon(0.005));
    CHECK(stddev_of(reads) == Approx(expected).epsilon(0.06));
  }
}

TEST_CASE("relaxation: none right after programming, a step and a ln(t) drift later", "[physics]") {
  Calibration cal = quiet_calibration();
  cal.relaxation.enabled = true;
  const DeviceModel model(cal);
  const double g0 = 100.0, step = -2.0;
  CHECK(model.relaxed_us(g0, step, 1e-6) == Approx(g0).epsilon(1e-4));
  const double one_min = model.relaxed_us(g0, step, 60.0);
  const double one_day = model.relaxed_us(g0, step, 86400.0);
  CHECK(one_min < g0 + step * 0.99);
  CHECK(one_day < one_min);  // drift continues with ln(t)
  cal.relaxation.enabled = false;
  CHECK(DeviceModel(cal).relaxed_us(g0, step, 86400.0) == g0);
}

TEST_CASE("manufacture: endurance thresholds log-normal, defects at the yield rate", "[physics]") {
  Calibration cal = Calibration::defaults();
  cal.yield.defect_fraction = 0.01;
  const DeviceModel model(cal);
  RandomStream rng(9);
  std::vector<double> log_endurance;
  int defects = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const CellTraits t = model.draw_traits(rng);
    log_endurance.push_back(std::log(t.endurance_cycles));
    defects += t.defect != CellDefect::none;
  }
  CHECK(std::exp(median_of(log_endurance)) == Approx(cal.endurance.median_cycles).epsilon(0.05));
  CHECK(stddev_of(log_endurance) == Approx(cal.endurance.sigma_ln).epsilon(0.05));
  CHECK(defects > n * 0.01 * 0.7);
  CHECK(defects < n * 0.01 * 1.3);
}

TEST_CASE(
    "parameters worked out once give the draws and relaxation of the direct calls, bit for bit",
    "[physics]") {
  const Calibration cal = Calibration::defaults();
  const DeviceModel model(cal);
  RandomStream traits_rng(21);
  for (int cell = 0; cell < 50; ++cell) {
    const CellTraits t = model.draw_traits(traits_rng);
    for (const auto& level : cal.hcs_levels) {
      for (double icc : {level.icc_ua, 0.7 * level.icc_ua, 1.3 * level.icc_ua}) {
        const HcsDrawParameters at = model.hcs_draw_parameters(icc);
        CHECK(at.median_us * (1.0 + at.d2d_sigma_rel * t.hcs_d2d_z) == model.hcs_median_us(icc, t));
        CHECK(at.c2c_sigma_us == model.hcs_c2c_sigma_us(icc));
        RandomStream a(static_cast<std::uint64_t>(cell)), b = a;
        CHECK(model.draw_hcs_us(at, t.hcs_d2d_z, a, 1.1) == model.draw_hcs_us(icc, t, b, 1.1));
      }
    }
    RandomStream a(static_cast<std::uint64_t>(cell) + 100), b = a;
    CHECK(model.draw_lcs_us(t.lcs_d2d_z, a) == model.draw_lcs_us(t, b));
  }
  for (double elapsed_s : {0.0, 0.05, 1.0, 60.0, 86400.0}) {
    const RelaxationFactors f = model.relaxation_factors(elapsed_s);
    CHECK(f.unchanged == (elapsed_s == 0.0));
    CHECK(DeviceModel::relaxed_us(57.5, -0.4, f) == model.relaxed_us(57.5, -0.4, elapsed_s));
  }
}
