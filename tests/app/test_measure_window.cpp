// The programming window (app/bench/window.*, docs/bench.md "Measurements") on the simulated
// board: the fits recover the simulator's switching parameters and level table within the
// tolerances stated here (and in docs/bench.md); the files read back (HDF5 scales and units, CSV
// header, PNGs); a sweep out of the station's limits is refused before any cell is read or
// pulsed; a stopped window resumes at the next point to the same data; a board that is not
// simulated needs --yes; malformed campaign parameters name their JSON path.
#include <hdf5.h>
#include <hdf5_hl.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/bench/measurement.hpp"
#include "app/bench/window.hpp"
#include "app/campaign/campaign.hpp"
#include "app/cli/commands.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "instruments/array_board.hpp"
#include "protocols/board_messages.hpp"
#include "tests/app/support/h5_read.hpp"
#include "tests/app/support/measure_checks.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path scratch(const std::string& name) { return test::scratch_path("metaplast-window", name); }

// Switching parameters away from the defaults (so a fit cannot pass by returning them), no
// relaxation between SET and read, no defective cells.
devices::Calibration window_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  c.switching.set_threshold_bl_v = 0.85;
  c.switching.set_transition_v = 0.25;
  c.switching.set_overdrive_rel_per_v = 0.1;
  c.switching.width_v_per_decade = 0.12;
  return c;
}

fs::path write_calibration(const devices::Calibration& c, const std::string& name) {
  const fs::path file = scratch(name);
  devices::save_calibration(c, file);
  return file;
}

double value(const json& cal, const char* key) { return cal.at(key).at("value").get<double>(); }

}  // namespace

// Tolerances (256 cells; amplitudes 0.4 .. 1.6 V in 25 mV steps at 100 ns and 1 us):
// set_threshold_bl_v within 0.02 V, set_transition_v within 0.04 V, width_v_per_decade within
// 0.02 V per decade, set_overdrive_rel_per_v within 20 %.
TEST_CASE("window: the SET S-curve, the width trade-off and the over-drive slope are recovered",
          "[measure][window]") {
  const auto calibration = window_calibration();
  const fs::path cal = write_calibration(calibration, "s-curve-cal.json");
  const fs::path out = scratch("s-curve");
  bench::WindowOptions o;
  o.cells = 256;
  o.bl_v = bench::parse_sweep("bl-v", "0.4:1.6:0.025");
  o.width_ns = {100, 1000};
  bench::WindowMeasurement m(o);
  const auto outcome = bench::run_measurement(
      m, test::harness("sim:?seed=11&formed=1&calibration=" + cal.string(), out));
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const json c = outcome.result.at("calibration");
  INFO(c.dump(2));
  const auto& s = calibration.switching;
  CHECK(value(c, "/switching/set_threshold_bl_v") == Approx(s.set_threshold_bl_v).margin(0.02));
  CHECK(value(c, "/switching/set_transition_v") == Approx(s.set_transition_v).margin(0.04));
  CHECK(value(c, "/switching/width_v_per_decade") == Approx(s.width_v_per_decade).margin(0.02));
  CHECK(value(c, "/switching/set_overdrive_rel_per_v") ==
        Approx(s.set_overdrive_rel_per_v).epsilon(0.2));
  for (const char* key : {"/switching/set_threshold_bl_v", "/switching/set_transition_v",
                          "/switching/width_v_per_decade", "/switching/set_overdrive_rel_per_v"}) {
    CHECK(c[key]["identifiable"] == true);
    CHECK(c[key]["standard_error"].get<double>() > 0);
    CHECK_FALSE(c[key]["note"].get<std::string>().empty());
  }
  CHECK_FALSE(c.contains("/hcs_levels"));  // one gate: no table
  test::check_png(out / "window_scurve.png");
  CHECK_FALSE(fs::exists(out / "window.png"));  // no gate sweep, no plot against it
  fs::remove_all(out);
  fs::remove(cal);
}

// Tolerance: at every level of the table (gates 0.80 .. 1.26 V in 20 mV steps, 256 cells) the
// median G within 4 % of the simulator's level median; I_CC as the board's table; the spread
// between the level's c2c sigma and twice it (it also holds d2d and read noise).
TEST_CASE("window: a gate sweep seeds the level table of a calibration; files read back",
          "[measure][window]") {
  const auto calibration = window_calibration();
  const fs::path cal = write_calibration(calibration, "gate-cal.json");
  const fs::path out = scratch("gate");
  bench::WindowOptions o;
  o.cells = 256;
  o.gate_v = bench::parse_sweep("gate-v", "0.80:1.26:0.02");
  REQUIRE(o.gate_v.size() == 24);
  bench::WindowMeasurement m(o);
  const auto outcome = bench::run_measurement(
      m, test::harness("sim:?seed=12&formed=1&calibration=" + cal.string(), out));
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const json c = outcome.result.at("calibration");
  INFO(c.dump(2));
  REQUIRE(c.contains("/hcs_levels"));
  const json table = c["/hcs_levels"]["value"];
  REQUIRE(table.size() == calibration.hcs_levels.size());
  for (const auto& row : table) {
    const auto& truth = calibration.hcs_levels.at(row["level"].get<std::size_t>() - 1);
    CHECK(row["gate_voltage_v"].get<double>() == Approx(truth.gate_voltage_v));
    CHECK(row["icc_ua"].get<double>() == Approx(truth.icc_ua));
    CHECK(row["median_conductance_us"].get<double>() ==
          Approx(truth.median_conductance_us).epsilon(0.04));
    CHECK(row["c2c_sigma_us"].get<double>() > truth.c2c_sigma_us * 0.8);
    CHECK(row["c2c_sigma_us"].get<double>() < truth.c2c_sigma_us * 2.0);
  }
  CHECK(c["/hcs_levels"]["identifiable"] == true);
  // Every point switches every cell at 1.2 V / 100 ns: no S-curve.
  CHECK_FALSE(c.contains("/switching/set_threshold_bl_v"));

  const auto record = common::read_json_file(out / bench::kRecordFile);
  CHECK(record["kind"] == "window");
  CHECK(record["status"] == "completed");
  CHECK(record["result"]["points_done"] == 24);
  // The HDF5 file: G [cell][point] with the sweep axes as scales of the point axis, units.
  const hid_t h5 = H5Fopen((out / "window.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  CHECK(test::string_attribute(h5, "kind") == "window");
  CHECK(test::string_attribute(h5, "board_serial") == outcome.record.board.serial);
  CHECK(test::number_attribute(h5, "board_setting_set_bl_voltage_v") == 1.2);
  const hid_t g = H5Dopen2(h5, "conductance_us", H5P_DEFAULT);
  REQUIRE(g >= 0);
  CHECK(test::string_attribute(g, "units").rfind("uS", 0) == 0);
  for (const char* name :
       {"cell", "point", "gate_voltage_v", "icc_ua", "bl_voltage_v", "pulse_width_ns"}) {
    const hid_t scale = H5Dopen2(h5, name, H5P_DEFAULT);
    REQUIRE(scale >= 0);
    CHECK(H5DSis_scale(scale) > 0);
    CHECK(H5DSis_attached(g, scale, std::string(name) == "cell" ? 0 : 1) > 0);
    CHECK_FALSE(test::string_attribute(scale, "units").empty());
    H5Dclose(scale);
  }
  H5Dclose(g);
  H5Fclose(h5);
  test::check_csv(out / "window.csv", outcome.record.board.serial,
                  "cell,row,col,point,gate_voltage_v,icc_ua,bl_voltage_v,pulse_width_ns,"
                  "reset_conductance_us,conductance_us,switched");
  test::check_png(out / "window.png");
  test::check_png(out / "window_icc.png");
  CHECK_FALSE(fs::exists(out / "window_scurve.png"));
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("window: a sweep outside the station's limits is refused before any cell is touched",
          "[measure][window][limits]") {
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("limits.log"),
                              {"--formed", "--seed", "3"});
  const fs::path station = scratch("station.json");
  std::ofstream(station) << R"({"station": "bench-3", "limits": {"max_pulse_width_ns": 5000,
                                "max_compliance_ua": 60}})";
  const std::uint64_t before = board.total_pulses();
  const auto refused = [&](bench::WindowOptions o, const std::string& name) {
    const fs::path out = scratch(name);
    bench::WindowMeasurement m(o);
    auto h = test::harness(board.address(), out);
    h.session.station = station;
    std::string error;
    try {
      bench::run_measurement(m, h);
    } catch (const std::exception& e) {
      error = e.what();
    }
    CHECK_FALSE(fs::exists(out / "window.h5"));
    fs::remove_all(out);
    return error;
  };
  bench::WindowOptions amplitude;
  amplitude.gate_v = {1.0};               // 32 uA
  amplitude.bl_v = {1.0, 2.0, 3.8, 4.0};  // the station's default limit: 3.6 V
  CHECK_THAT(refused(amplitude, "bl"), Catch::Contains("bit line 3.8 V") &&
                                           Catch::Contains("max_bl_voltage_v = 3.6") &&
                                           Catch::Contains("nothing was sent"));
  bench::WindowOptions gate;
  gate.gate_v = {0.9, 1.0, 1.232};  // the top level: 80 uA
  CHECK_THAT(refused(gate, "gate"),
             Catch::Contains("1.232") && Catch::Contains("max_compliance_ua = 60"));
  bench::WindowOptions width;
  width.gate_v = {1.0};
  width.bl_v = {0.8, 1.0};
  width.width_ns = {100, 1000, 10000};
  CHECK_THAT(refused(width, "width"),
             Catch::Contains("10000 ns") && Catch::Contains("max_pulse_width_ns = 5000"));
  // Not one pulse (the check comes before the choice of cells, which reads the array).
  CHECK(board.total_pulses() == before);
  fs::remove(station);
}

TEST_CASE("window: a stopped sweep leaves the board safe and resumes at the next point",
          "[measure][window][resume]") {
  const fs::path cal = write_calibration(window_calibration(), "resume-cal.json");
  const std::vector<std::string> args{"--formed", "--seed", "9", "--calibration", cal.string()};
  bench::WindowOptions o;
  o.cells = 24;
  o.bl_v = {0.6, 0.7, 0.8, 0.9, 1.0, 1.2};
  std::vector<std::vector<double>> whole;
  {
    test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("w1.log"), args);
    const fs::path out = scratch("whole");
    bench::WindowMeasurement m(o);
    REQUIRE(bench::run_measurement(m, test::harness(board.address(), out)).status ==
            bench::MeasurementStatus::completed);
    whole = m.set_us();
    fs::remove_all(out);
  }
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("w2.log"), args);
  const fs::path out = scratch("parts");
  {
    bench::WindowMeasurement m(o);
    auto h = test::harness(board.address(), out);
    h.stop_requested = [&m] { return m.batches_done() >= 2; };
    const auto outcome = bench::run_measurement(m, h);
    CHECK(outcome.status == bench::MeasurementStatus::interrupted);
    CHECK_THAT(outcome.resume_hint, Catch::Contains("2 of 6 sweep points"));
    CHECK(fs::exists(out / "window.h5"));
  }
  CHECK((test::board_state_flags(board.address()) & protocols::board_state::kSafe) != 0);
  bench::WindowMeasurement m(o);
  auto h = test::harness(board.address(), out);
  h.out.clear();
  h.resume = out;
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::completed);
  CHECK(outcome.record.resumed == 1);
  CHECK(m.set_us() == whole);
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("window: stopped before its first point, it writes the cells and no data",
          "[measure][window][resume]") {
  const fs::path out = scratch("stopped-early");
  bench::WindowOptions o;
  o.cells = 8;
  o.bl_v = {0.8, 1.0};
  bench::WindowMeasurement m(o);
  auto h = test::harness("sim:?seed=2&formed=1", out);
  h.stop_requested = [] { return true; };
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::interrupted);
  CHECK(outcome.result["points_done"] == 0);
  CHECK(outcome.result["calibration"].empty());
  CHECK(fs::exists(out / "window.h5"));
  CHECK(fs::exists(out / "window.csv"));
  fs::remove_all(out);
}

TEST_CASE("window options and campaign steps name what is wrong", "[measure][window][options]") {
  CHECK(bench::parse_sweep("gate-v", "0.8:1.0:0.1") == std::vector<double>{0.8, 0.9, 1.0});
  CHECK(bench::parse_sweep("bl-v", "1,1.5,2") == std::vector<double>{1, 1.5, 2});
  CHECK_THROWS_WITH(bench::parse_sweep("bl-v", "1:2"), Catch::Contains("--bl-v"));
  CHECK_THROWS_WITH(bench::parse_sweep("bl-v", "1:0:0.1"), Catch::Contains("stop >= start"));
  CHECK_THROWS_WITH(bench::parse_sweep("width-ns", "10,x"), Catch::Contains("\"x\""));
  bench::WindowOptions none;
  CHECK_THROWS_WITH(bench::check_window_options(none), Catch::Contains("nothing is swept"));

  const auto error = [](const std::string& step) -> std::string {
    try {
      campaign::parse_campaign(
          json::parse(R"({"campaign": "c", "steps": [{"type": "report"}, )" + step + "]}"),
          "camp.json");
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error(R"({"id": "w", "type": "window", "bl-v": [0.7, 0.8, 0.9]})") == "(no error)");
  CHECK_THAT(error(R"({"id": "w", "type": "window", "cells": 0, "bl-v": [0.7, 0.8]})"),
             Catch::Contains("camp.json: /steps/1/cells"));
  CHECK_THAT(error(R"({"id": "w", "type": "window", "gate-v": [0.9, -1]})"),
             Catch::Contains("/steps/1/gate-v"));
  CHECK_THAT(error(R"({"id": "w", "type": "window", "bl-v": "0.7:0.9:0.1"})"),
             Catch::Contains("/steps/1/bl-v"));
  CHECK_THAT(error(R"({"id": "w", "type": "window", "width-ns": [100, 1000], "seed": "x"})"),
             Catch::Contains("/steps/1/seed"));
  CHECK_THAT(error(R"({"id": "w", "type": "window"})"),
             Catch::Contains("/steps/1/gate-v") && Catch::Contains("nothing is swept"));
  CHECK_THAT(error(R"({"id": "w", "type": "window", "bl": [1, 2]})"),
             Catch::Contains("/steps/1/bl") && Catch::Contains("unknown"));
  CHECK_THAT(error(R"({"id": "w", "type": "window", "bl-v": [1, 2], "switched-threshold-us": -1})"),
             Catch::Contains("/steps/1/switched-threshold-us"));
}

TEST_CASE("window runs as a campaign step", "[measure][window][campaign]") {
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  const fs::path campaign_file = scratch("window-campaign.json"), dir = scratch("window-run"),
                 log = scratch("window-run.log");
  std::ofstream(campaign_file) << json::parse(R"({"campaign": "bench", "steps": [
      {"id": "window", "type": "window", "device": "sim:?seed=4&formed=1",
       "cells": 16, "bl-v": [0.6, 0.8, 1.0, 1.2], "width-ns": [100, 1000]}]})")
                                      .dump();
  const int rc = test::run(
      {binary, "campaign", "run", campaign_file.string(), "--out", dir.string(), "--quiet"}, log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto record = common::read_json_file(dir / "steps" / "window" / bench::kRecordFile);
  CHECK(record["status"] == "completed");
  CHECK(record["result"]["points_done"] == 8);
  CHECK(fs::exists(dir / "steps" / "window" / "window.csv"));
  for (const auto& p : {campaign_file, dir, log}) fs::remove_all(p);
}
