// The fit of a characterisation on synthetic samples with known medians and spreads: it must
// recover them, separate cycle-to-cycle from device-to-device spread and read noise, and
// screen stuck cells out.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "app/hil/calibration_fit.hpp"

namespace hil = metaplast::hil;
namespace devices = metaplast::devices;

namespace {

struct Truth {
  double median_us = 100;
  double c2c = 4;  // uS (HCS) or ln (LCS)
  double d2d = 5;  // uS (HCS) or ln (LCS)
  double read_rel = 0.01;
  double read_abs_us = 0.05;
};

double read_sigma(const Truth& t, double g) { return t.read_rel * g + t.read_abs_us; }

// N cells x K cycles drawn from the calibration's model, plus R repeated reads of the first M
// cells' last state.
hil::LevelSamples synthesize(int level, const Truth& t, std::size_t cells, std::size_t cycles,
                             std::size_t read_cells, std::size_t repeats, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  hil::LevelSamples s;
  s.level = level;
  s.icc_ua = level * 10.0;
  s.gate_voltage_v = level == 0 ? 0.0 : 0.8 + 0.05 * level;
  for (std::size_t i = 0; i < cells; ++i) {
    const double z = normal(rng);
    std::vector<double> samples;
    double programmed = 0;
    for (std::size_t k = 0; k < cycles; ++k) {
      programmed = level == 0 ? std::exp(std::log(t.median_us) + t.d2d * z + t.c2c * normal(rng))
                              : t.median_us + t.d2d * z + t.c2c * normal(rng);
      samples.push_back(programmed + read_sigma(t, programmed) * normal(rng));
    }
    s.by_cell.push_back(samples);
    if (i < read_cells) {
      std::vector<double> reads;
      for (std::size_t r = 0; r < repeats; ++r) {
        reads.push_back(programmed + read_sigma(t, programmed) * normal(rng));
      }
      s.read_repeats.push_back(reads);
    }
  }
  return s;
}

}  // namespace

TEST_CASE("an HCS level's median, c2c and d2d spreads are recovered, read noise removed") {
  std::mt19937_64 rng(42);
  Truth t;
  t.median_us = 100;
  t.c2c = 4;
  t.d2d = 5;
  t.read_rel = 0.03;  // 3 uS at 100 uS: comparable to c2c, so not removing it would show
  const auto s = synthesize(3, t, 400, 20, 150, 10, rng);
  const auto f = hil::fit_level(s);
  CHECK(f.cells == 400);
  CHECK(f.cycles == 20);
  CHECK(f.median_us == Approx(100).epsilon(0.01));
  CHECK(f.c2c_sigma == Approx(4.0).epsilon(0.05));
  CHECK(f.within_sigma > 4.8);  // c2c and read noise together, before the correction
  CHECK(f.read_measured);
  CHECK(f.read_sigma == Approx(3.05).epsilon(0.06));
  CHECK(f.d2d_sigma == Approx(5.0).epsilon(0.12));
  CHECK(f.d2d_sigma_rel() == Approx(0.05).epsilon(0.12));
}

TEST_CASE("the d2d spread is corrected for the c2c part of the cell means") {
  // Cells identical (d2d = 0): the spread of the cell means is c2c / sqrt(K) only.
  std::mt19937_64 rng(7);
  Truth t;
  t.c2c = 5;
  t.d2d = 0;
  t.read_rel = 0;
  t.read_abs_us = 0;
  const auto f = hil::fit_level(synthesize(2, t, 2000, 10, 0, 0, rng));
  CHECK(f.cell_means_sigma == Approx(5.0 / std::sqrt(10.0)).epsilon(0.06));
  CHECK(f.d2d_sigma < 0.35);  // would be ~1.6 uS without the correction
  CHECK_FALSE(f.read_measured);
}

TEST_CASE("the LCS is fitted as a log-normal") {
  std::mt19937_64 rng(3);
  Truth t;
  t.median_us = 3.0;
  t.c2c = 0.5;
  t.d2d = 0.1;
  const auto f = hil::fit_level(synthesize(0, t, 2000, 30, 100, 10, rng));
  CHECK(f.log_normal);
  CHECK(f.median_us == Approx(3.0).epsilon(0.02));
  CHECK(f.c2c_sigma == Approx(0.5).epsilon(0.03));
  CHECK(f.d2d_sigma == Approx(0.1).epsilon(0.15));
}

TEST_CASE("a whole calibration: levels, read-noise line and c2c line") {
  std::mt19937_64 rng(11);
  std::vector<hil::LevelSamples> levels;
  Truth lcs;
  lcs.median_us = 3;
  lcs.c2c = 0.5;
  lcs.d2d = 0.1;
  levels.push_back(synthesize(0, lcs, 500, 10, 200, 12, rng));
  for (int l = 1; l <= 8; ++l) {
    Truth t;
    t.median_us = 20.0 * l;
    t.c2c = 4.78 - 0.0091 * t.median_us;
    t.d2d = 0.03 * t.median_us;
    levels.push_back(synthesize(l, t, 500, 10, 200, 12, rng));
  }
  const auto fit = hil::fit_calibration(levels);
  REQUIRE(fit.levels.size() == 9);
  REQUIRE(fit.read_noise.measured);
  CHECK(fit.read_noise.levels_used == 9);
  CHECK(fit.read_noise.relative == Approx(0.01).epsilon(0.1));
  CHECK(fit.read_noise.absolute_us == Approx(0.05).epsilon(0.5));
  REQUIRE(fit.c2c_line.valid);
  CHECK(fit.c2c_line.intercept_us == Approx(4.78).epsilon(0.05));
  CHECK(fit.c2c_line.slope == Approx(-0.0091).epsilon(0.35));

  metaplast::devices::CalibrationIdentity id;
  id.chip_id = "W3-D12";
  id.board_serial = "B-77";
  id.source = "characterization";
  auto base = metaplast::devices::Calibration::defaults();
  base.relaxation.enabled = false;
  base.endurance.median_cycles = 1.5e6;
  metaplast::instruments::BoardSettings settings;
  settings.read_voltage_v = 0.15;
  settings.set_bl_voltage_v = 1.3;
  settings.reset_pulse_width_ns = 1000;  // one decade longer than the reference width
  const auto c = hil::to_calibration(fit, base, id, settings);
  CHECK(c.identity.chip_id == "W3-D12");
  CHECK(c.read_voltage_v == 0.15);
  // The medians belong to the measurement's pulses, as effective amplitudes at 100 ns.
  CHECK(c.switching.set_reference_bl_v == Approx(1.3));
  CHECK(c.switching.reset_reference_sl_v == Approx(1.5 + base.switching.width_v_per_decade));
  REQUIRE(c.hcs_levels.size() == 8);
  for (int l = 1; l <= 8; ++l) {
    const auto& h = c.hcs_levels[l - 1];
    CHECK(h.icc_ua == 10.0 * l);
    CHECK(h.median_conductance_us == Approx(20.0 * l).epsilon(0.03));
    CHECK(h.median_conductance_us == fit.levels[l].median_us);
    CHECK(h.c2c_sigma_us == fit.levels[l].c2c_sigma);
    CHECK(h.d2d_sigma_rel == Approx(fit.levels[l].d2d_sigma / fit.levels[l].median_us));
  }
  CHECK(c.lcs.median_conductance_us == fit.levels[0].median_us);
  CHECK(c.lcs.c2c_sigma_ln == fit.levels[0].c2c_sigma);
  CHECK(c.read_noise.relative == fit.read_noise.relative);
  // Not measured: kept from the base.
  CHECK_FALSE(c.relaxation.enabled);
  CHECK(c.endurance.median_cycles == 1.5e6);
  CHECK(c.level_medians_us().size() == 9);
}

TEST_CASE("stuck and outlying cells are screened out, and the fit without them is clean") {
  std::mt19937_64 rng(5);
  std::vector<hil::LevelSamples> levels;
  Truth lcs;
  lcs.median_us = 3;
  lcs.c2c = 0.5;
  lcs.d2d = 0.1;
  levels.push_back(synthesize(0, lcs, 300, 5, 0, 0, rng));
  for (int l = 1; l <= 4; ++l) {
    Truth t;
    t.median_us = 20.0 * l;
    t.c2c = 4;
    t.d2d = 0.03 * t.median_us;
    levels.push_back(synthesize(l, t, 300, 5, 0, 0, rng));
  }
  // Cell 17 never SETs (reads like the LCS everywhere), cell 42 never RESETs, cell 99 is far
  // too strong at level 2 only.
  for (auto& s : levels) {
    for (auto& g : s.by_cell[17]) g = 3.0;
    for (auto& g : s.by_cell[42]) g = 60.0;
  }
  for (auto& g : levels[2].by_cell[99]) g += 40;
  const auto findings = hil::screen_cells(levels);
  REQUIRE(findings.size() == 3);
  CHECK(findings[0].cell == 17);
  CHECK(findings[0].reason == "stuck_lcs");
  CHECK(findings[1].cell == 42);
  CHECK(findings[1].reason == "stuck_hcs");
  CHECK(findings[2].cell == 99);
  CHECK(findings[2].reason == "outlier");
  CHECK_THAT(findings[2].detail, Catch::Contains("level 2"));

  const auto polluted = hil::fit_level(levels[4]);
  const auto clean = hil::fit_level(hil::without_cells(levels, {17, 42, 99})[4]);
  CHECK(clean.cells == 297);
  CHECK(clean.d2d_sigma == Approx(2.4).epsilon(0.3));
  CHECK(polluted.d2d_sigma > 1.5 * clean.d2d_sigma);
}

TEST_CASE("the fit refuses data that cannot separate the spreads") {
  hil::LevelSamples one_cycle;
  one_cycle.level = 1;
  one_cycle.by_cell = {{20.0}, {21.0}, {19.0}};
  CHECK_THROWS_WITH(hil::fit_level(one_cycle), Catch::Contains("at least 2 cycles"));

  hil::LevelSamples ragged;
  ragged.level = 1;
  ragged.by_cell = {{20.0, 21.0}, {19.0, 18.0, 22.0}};
  CHECK_THROWS_WITH(hil::fit_level(ragged), Catch::Contains("cell 1 has 3 samples"));

  hil::LevelSamples one_cell;
  one_cell.level = 2;
  one_cell.by_cell = {{20.0, 21.0}};
  CHECK_THROWS_WITH(hil::fit_level(one_cell), Catch::Contains("at least 2 cells"));
}

TEST_CASE("a fit whose medians do not increase is refused by the schema, naming the field") {
  hil::CalibrationFit fit;
  hil::LevelFit lcs;
  lcs.level = 0;
  lcs.log_normal = true;
  lcs.median_us = 3;
  hil::LevelFit a;
  a.level = 1;
  a.icc_ua = 10;
  a.gate_voltage_v = 0.8;
  a.median_us = 40;
  hil::LevelFit b = a;
  b.level = 2;
  b.icc_ua = 20;
  b.gate_voltage_v = 0.9;
  b.median_us = 30;  // lower than level 1: a board whose I_CC table does not do what it says
  fit.levels = {lcs, a, b};
  CHECK_THROWS_WITH(hil::to_calibration(fit, metaplast::devices::Calibration::defaults(), {}, {}),
                    Catch::Contains("/hcs_levels/1"));
}
