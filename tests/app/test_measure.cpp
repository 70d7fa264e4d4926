// The device measurements of app/bench/ on the simulated board (docs/bench.md, "Measurements"):
// each recovers the simulator's parameters within the tolerance stated here, writes HDF5 (read
// back with the HDF5 C API: units, scales attached, the settings in force as attributes), a CSV
// with its header and a PNG; a stop mid-measurement leaves the board safe and --resume completes
// it (with the same data as an uninterrupted run where the model allows it); the permission rule
// refuses a board that is not simulated before any pulse.
#include <hdf5.h>
#include <hdf5_hl.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "app/bench/measurement.hpp"
#include "app/bench/read_disturb.hpp"
#include "app/bench/retention.hpp"
#include "app/campaign/campaign.hpp"
#include "app/cli/commands.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "instruments/array_board.hpp"
#include "instruments/board_settings.hpp"
#include "protocols/board_messages.hpp"
#include "tests/app/support/h5_read.hpp"
#include "tests/app/support/measure_checks.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using test::board_state_flags;
using test::campaign_error;
using test::check_csv;
using test::check_png;
using test::harness;
using test::number_attribute;
using test::string_attribute;

namespace {

fs::path scratch(const std::string& name) { return test::scratch_path("metaplast-measure", name); }

// Relaxation parameters inside the window a test can cover (times 20 s .. 5e4 s): the step's time
// constant in the middle, a drift large enough to see its reference time.
devices::Calibration retention_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.step_mean_rel = -0.05;
  c.relaxation.step_sigma_rel = 0.03;
  c.relaxation.step_time_constant_s = 1000.0;
  c.relaxation.drift_per_decade_rel = 0.02;
  c.relaxation.drift_reference_s = 1.0;
  c.yield.defect_fraction = 0.0;
  return c;
}

// A read disturb visible in a few hundred reads at 0.25 V, no relaxation to confound it.
devices::Calibration disturb_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.enabled = false;
  c.read_disturb.onset_voltage_v = 0.15;
  c.read_disturb.slope_v = 0.05;
  c.read_disturb.rel_per_read = 1e-4;
  c.yield.defect_fraction = 0.0;
  return c;
}

fs::path write_calibration(const devices::Calibration& c, const std::string& name) {
  const fs::path file = scratch(name);
  devices::save_calibration(c, file);
  return file;
}

// The HDF5 file carries the settings in force, the board identity, units and attached scales.
void check_h5(const fs::path& file, const instruments::BoardSettings& settings,
              const std::string& serial, const char* axis_scale) {
  const hid_t h5 = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  test::check_settings_attributes(h5, settings);
  CHECK(string_attribute(h5, "board_serial") == serial);
  CHECK_FALSE(string_attribute(h5, "chip_id").empty());
  const hid_t g = H5Dopen2(h5, "conductance_us", H5P_DEFAULT);
  const hid_t scale = H5Dopen2(h5, axis_scale, H5P_DEFAULT);
  const hid_t cell = H5Dopen2(h5, "cell", H5P_DEFAULT);
  REQUIRE(g >= 0);
  REQUIRE(scale >= 0);
  CHECK(string_attribute(g, "units").rfind("uS", 0) == 0);
  CHECK_FALSE(string_attribute(scale, "units").empty());
  CHECK(H5DSis_scale(scale) > 0);
  CHECK(H5DSis_attached(g, cell, 0) > 0);
  CHECK(H5DSis_attached(g, scale, 1) > 0);
  H5Dclose(cell);
  H5Dclose(scale);
  H5Dclose(g);
  H5Fclose(h5);
}

}  // namespace

// Tolerances (320 cells, 12 read times from 20 s to 5e4 s at a 3600x clock): the drift per decade
// within 20 %, the step's time constant within a factor 1.6, its mean within 0.012 and its
// spread within 0.012 (absolute, relative units), the drift's reference time within a factor 5.
TEST_CASE("retention recovers the simulator's relaxation and drift on an accelerated clock",
          "[measure][retention]") {
  const auto calibration = retention_calibration();
  const fs::path cal = write_calibration(calibration, "retention-cal.json");
  const fs::path out = scratch("retention");
  bench::RetentionOptions o;
  o.programming.cells = 320;
  o.programming.levels = {1, 3, 5, 7};
  o.start_s = 20;
  o.stop_s = 5e4;
  o.points = 12;
  o.programming.chunk_cells = 80;
  bench::RetentionMeasurement m(o);
  const std::string device = "sim:?seed=3&formed=1&clock=3600&calibration=" + cal.string();
  auto h = test::harness(device, out);
  h.session.settings = {{"read_voltage_v", {0.22}}};
  const auto outcome = bench::run_measurement(m, h);
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const auto fit = m.fit();
  REQUIRE(fit);
  const auto& r = calibration.relaxation;
  INFO(outcome.result.dump(2));
  CHECK(fit->drift_per_decade_rel.value == Approx(r.drift_per_decade_rel).epsilon(0.2));
  CHECK(fit->drift_per_decade_rel.identifiable);
  CHECK(fit->step_time_constant_s.value > r.step_time_constant_s / 1.6);
  CHECK(fit->step_time_constant_s.value < r.step_time_constant_s * 1.6);
  CHECK(fit->step_time_constant_s.identifiable);
  CHECK(fit->step_mean_rel.value == Approx(r.step_mean_rel).margin(0.012));
  CHECK(fit->step_sigma_rel.value == Approx(r.step_sigma_rel).margin(0.012));
  CHECK(fit->drift_reference_s.value > r.drift_reference_s / 5);
  CHECK(fit->drift_reference_s.value < r.drift_reference_s * 5);
  // Reads happened on the board's clock, hours after programming.
  CHECK(m.age_s().back()[0] >= 5e4);

  // The record and the files.
  const auto record = common::read_json_file(out / bench::kRecordFile);
  CHECK(record["kind"] == "retention");
  CHECK(record["status"] == "completed");
  CHECK(record["board_settings"]["read_voltage_v"] == 0.22);
  CHECK(record["result"]["fit"]["relaxation"]["drift_per_decade_rel"].contains("standard_error"));
  auto settings = instruments::BoardSettings{};
  settings.read_voltage_v = 0.22;
  check_h5(out / "retention.h5", settings, outcome.record.board.serial, "time_s");
  check_csv(out / "retention.csv", outcome.record.board.serial,
            "cell,row,col,level,target_us,verify_us,passed,point,time_s,age_s,conductance_us");
  check_png(out / "retention.png");
  fs::remove_all(out);
  fs::remove(cal);
}

// Tolerance: delta per read within 5 % (64 cells x 400 reads at 0.25 V; relaxation off), and
// rel_per_read within 5 % given the simulator's onset and slope.
TEST_CASE("read disturb recovers the simulator's disturb per read at the read voltage",
          "[measure][read-disturb]") {
  const auto calibration = disturb_calibration();
  const fs::path cal = write_calibration(calibration, "disturb-cal.json");
  const fs::path out = scratch("disturb");
  bench::ReadDisturbOptions o;
  o.programming.cells = 64;
  o.programming.levels = {0, 3, 6};
  o.reads = 400;
  o.points = 12;
  bench::ReadDisturbMeasurement m(o, calibration.read_disturb);
  auto h = test::harness("sim:?seed=5&formed=1&calibration=" + cal.string(), out);
  // With a level table of six levels in place of the board's eight (the same gates and targets):
  // recorded as arrays, and the table in force in measurement.json.
  const std::vector<double> gates{0.824, 0.916, 0.987, 1.047, 1.1, 1.148};
  const std::vector<double> targets{20, 40, 60, 80, 100, 120};
  h.session.settings = {
      {"read_voltage_v", {0.25}}, {"level_gate_voltages_v", gates}, {"level_targets_us", targets}};
  const auto outcome = bench::run_measurement(m, h);
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const auto fit = m.fit(0.25);
  REQUIRE(fit);
  const auto& d = calibration.read_disturb;
  const double delta = d.rel_per_read * std::expm1((0.25 - d.onset_voltage_v) / d.slope_v);
  INFO(outcome.result.dump(2));
  CHECK(fit->delta_per_read == Approx(delta).epsilon(0.05));
  CHECK(fit->identifiable);
  REQUIRE(fit->rel_per_read);
  CHECK(*fit->rel_per_read == Approx(d.rel_per_read).epsilon(0.05));
  CHECK(fit->levels.size() == 3);

  auto settings = instruments::BoardSettings{};
  settings.read_voltage_v = 0.25;
  settings.level_gate_voltages_v = gates;
  settings.level_targets_us = targets;
  check_h5(out / "read_disturb.h5", settings, outcome.record.board.serial, "read_count");
  const auto record = common::read_json_file(out / bench::kRecordFile);
  REQUIRE(record["board"]["levels"].size() == 7);
  CHECK(record["board"]["levels"][6]["gate_voltage_v"] == Approx(1.148));
  CHECK(record["board"]["levels"][6]["icc_ua"] == Approx(60));
  CHECK(record["board_settings"]["level_targets_us"] == nlohmann::json(targets));
  check_csv(out / "read_disturb.csv", outcome.record.board.serial,
            "cell,row,col,level,verify_us,point,read_count,conductance_us");
  check_png(out / "read_disturb.png");
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("a stopped read-disturb measurement leaves the board safe and resumes to the same data",
          "[measure][read-disturb][resume]") {
  const auto calibration = disturb_calibration();
  const fs::path cal = write_calibration(calibration, "resume-cal.json");
  bench::ReadDisturbOptions o;
  o.programming.cells = 32;
  o.programming.levels = {2, 5};
  o.reads = 200;
  o.points = 10;
  const std::vector<std::string> args{"--formed", "--seed", "9", "--calibration", cal.string()};

  // Uninterrupted, on one board process.
  std::vector<std::vector<double>> whole;
  {
    test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb1.log"), args);
    const fs::path out = scratch("whole");
    bench::ReadDisturbMeasurement m(o, calibration.read_disturb);
    auto h = test::harness(board.address(), out);
    h.session.settings = {{"read_voltage_v", {0.25}}};
    REQUIRE(bench::run_measurement(m, h).status == bench::MeasurementStatus::completed);
    whole = m.conductance_us();
    fs::remove_all(out);
  }
  // Stopped after 4 recorded counts, then resumed, on an identical board process.
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb2.log"), args);
  const fs::path out = scratch("parts");
  {
    bench::ReadDisturbMeasurement m(o, calibration.read_disturb);
    auto h = test::harness(board.address(), out);
    h.session.settings = {{"read_voltage_v", {0.25}}};
    h.stop_requested = [&m] { return m.batches_done() >= 4; };
    const auto outcome = bench::run_measurement(m, h);
    CHECK(outcome.status == bench::MeasurementStatus::interrupted);
    CHECK_THAT(outcome.resume_hint, Catch::Contains("--resume " + out.string()));
    CHECK(common::read_json_file(out / bench::kRecordFile)["status"] == "interrupted");
    CHECK(fs::exists(out / "read_disturb.h5"));  // what was measured is written
  }
  CHECK((test::board_state_flags(board.address()) & protocols::board_state::kSafe) != 0);
  {
    // Other settings or options are refused before anything is sent.
    bench::ReadDisturbMeasurement other(o, calibration.read_disturb);
    auto h = test::harness(board.address(), out);
    h.out.clear();
    h.resume = out;
    h.session.settings = {{"read_voltage_v", {0.24}}};
    CHECK_THROWS_WITH(bench::run_measurement(other, h),
                      Catch::Contains("read_voltage_v") && Catch::Contains("--out"));
    auto more = o;
    more.reads = 300;
    bench::ReadDisturbMeasurement longer(more, calibration.read_disturb);
    h.session.settings = {{"read_voltage_v", {0.25}}};
    CHECK_THROWS_WITH(bench::run_measurement(longer, h), Catch::Contains("reads: 200 recorded"));
  }
  bench::ReadDisturbMeasurement m(o, calibration.read_disturb);
  auto h = test::harness(board.address(), out);
  h.out.clear();
  h.resume = out;
  h.session.settings = {{"read_voltage_v", {0.25}}};
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::completed);
  CHECK(outcome.record.resumed == 1);
  // The model draws the same noise in the same order: the data are those of the whole run.
  CHECK(m.conductance_us() == whole);
  CHECK(common::read_json_file(out / bench::kRecordFile)["status"] == "completed");
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("a stopped retention measurement resumes over TCP at the next time point",
          "[measure][retention][resume]") {
  const fs::path cal = write_calibration(retention_calibration(), "ret-resume-cal.json");
  test::SimboardProcess board(
      test::SimboardProcess::Link::tcp, scratch("sb3.log"),
      {"--formed", "--seed", "2", "--clock", "36000", "--calibration", cal.string()});
  bench::RetentionOptions o;
  o.programming.cells = 40;
  o.times_s = {100, 1000, 10000, 30000, 60000};
  const fs::path out = scratch("retention-resume");
  {
    bench::RetentionMeasurement m(o);
    auto h = test::harness(board.address(), out);
    h.stop_requested = [&m] { return m.batches_done() >= 2; };
    CHECK(bench::run_measurement(m, h).status == bench::MeasurementStatus::interrupted);
  }
  CHECK((test::board_state_flags(board.address()) & protocols::board_state::kSafe) != 0);
  bench::RetentionMeasurement m(o);
  auto h = test::harness(board.address(), out);
  h.out.clear();
  h.resume = out;
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::completed);
  REQUIRE(m.age_s().size() == 5);
  for (std::size_t k = 0; k < 5; ++k) {
    CHECK(m.age_s()[k][0] >= o.times_s[k]);  // never read early
    CHECK(m.conductance_us()[k][0] > 0);
  }
  // A finished measurement is not resumed again.
  bench::RetentionMeasurement again(o);
  CHECK_THROWS_WITH(bench::run_measurement(again, h), Catch::Contains("complete"));
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("measurements on a board that is not simulated need --yes before any pulse",
          "[measure][permission]") {
  test::SimboardProcess board(test::SimboardProcess::Link::pty, scratch("pty.log"),
                              {"--formed", "--seed", "4"});
  const std::uint64_t before = board.total_pulses();
  // Every measurement that pulses (cell-map only reads: tests/app/test_cell_map.cpp).
  const std::vector<std::vector<std::string>> measurements = {
      {"retention", "--cells", "4"},
      {"read-disturb", "--cells", "4"},
      {"forming", "--rows", "4"},
      {"window", "--cells", "4", "--bl-v", "0.8,1.0"},
      {"endurance", "--rows", "0,3", "--cols", "0,3"}};
  for (const auto& m : measurements) {
    INFO(m[0]);
    const fs::path out = scratch("refused-" + m[0]);
    CLI::App app;
    app.require_subcommand(1);
    cli::add_measure_command(app);
    std::vector<std::string> args{"measure", "--device", board.address(), "--out", out.string()};
    args.insert(args.begin() + 1, m.begin(), m.end());
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
      app.parse(reversed);
      FAIL("not refused");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains("--yes") && Catch::Contains(board.address()));
    }
    CHECK_FALSE(fs::exists(out));  // nothing written either
  }
  CHECK(board.total_pulses() == before);
}

TEST_CASE("measurement options name what is wrong", "[measure][options]") {
  bench::RetentionOptions r;
  r.points = 0;
  CHECK_THROWS_WITH(bench::check_retention_options(r), Catch::Contains("--points"));
  try {
    bench::retention_options_from_json({{"cells", -3}});
    FAIL("accepted");
  } catch (const bench::OptionError& e) {
    CHECK(e.key() == "cells");
  }
  try {
    bench::read_disturb_options_from_json({{"reeds", 10}});
    FAIL("accepted");
  } catch (const bench::OptionError& e) {
    CHECK(e.key() == "reeds");
    CHECK_THAT(e.what(), Catch::Contains("reads"));
  }
  bench::ReadDisturbOptions d;
  d.reads = 1000;
  d.points = 5;
  CHECK(bench::read_disturb_counts(d) == std::vector<std::uint64_t>{1, 6, 32, 178, 1000});
}

TEST_CASE("malformed measurement steps of a campaign name their JSON path", "[measure][campaign]") {
  const auto c = campaign::parse_campaign(nlohmann::json::parse(R"({"campaign": "c", "steps": [
        {"id": "r", "type": "retention", "cells": 100, "times": [1, 10, 100]},
        {"id": "d", "type": "read-disturb", "reads": 50, "board-settings": {"read_voltage_v": 0.25}}]})"),
                                          "camp.json");
  REQUIRE(c.steps.size() == 2);
  CHECK(c.uses_board());
  CHECK(c.steps[0].options["cells"] == 100);
  CHECK(c.steps[1].options["points"] == 30);  // the default filled in
  const std::string head = R"({"campaign": "c", "steps": [{"type": "report"}, )";
  CHECK_THAT(campaign_error(head + R"({"id": "r", "type": "retention", "points": 0}]})"),
             Catch::Contains("camp.json: /steps/1/points: must be in 1..1000"));
  CHECK_THAT(campaign_error(head + R"({"id": "r", "type": "retention", "times": [1, -5]}]})"),
             Catch::Contains("/steps/1/times"));
  CHECK_THAT(campaign_error(head + R"({"id": "r", "type": "retention", "cells": "many"}]})"),
             Catch::Contains("/steps/1/cells"));
  CHECK_THAT(campaign_error(head + R"({"id": "d", "type": "read-disturb", "reeds": 5}]})"),
             Catch::Contains("/steps/1/reeds") && Catch::Contains("unknown"));
  CHECK_THAT(campaign_error(head + R"({"id": "d", "type": "read-disturb", "reads": 1}]})"),
             Catch::Contains("/steps/1/reads"));
  CHECK_THAT(campaign_error(head + R"({"id": "d", "type": "read-disturb",
                                       "board-settings": {"read_voltage": 0.2}}]})"),
             Catch::Contains("/steps/1/board-settings/read_voltage"));
}

TEST_CASE("a measurement on an in-process simulated chip cannot be resumed by another process",
          "[measure][resume]") {
  const fs::path out = scratch("volatile");
  bench::ReadDisturbOptions o;
  o.programming.cells = 8;
  o.reads = 50;
  {
    bench::ReadDisturbMeasurement m(o);
    auto h = test::harness("sim:?seed=6&formed=1", out);
    h.stop_requested = [&m] { return m.batches_done() >= 2; };
    CHECK(bench::run_measurement(m, h).status == bench::MeasurementStatus::interrupted);
  }
  bench::ReadDisturbMeasurement m(o);
  auto h = test::harness("sim:?seed=6&formed=1", out);
  h.out.clear();
  h.resume = out;
  CHECK_THROWS_WITH(bench::run_measurement(m, h),
                    Catch::Contains("in-process simulated chip") && Catch::Contains("state=FILE"));
  fs::remove_all(out);
}

TEST_CASE("retention and read-disturb run as campaign steps", "[measure][campaign]") {
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  const fs::path campaign_file = scratch("measure-campaign.json"), dir = scratch("measure-run"),
                 log = scratch("measure-run.log");
  std::ofstream(campaign_file) << nlohmann::json::parse(R"({"campaign": "bench", "steps": [
      {"id": "retention", "type": "retention", "device": "sim:?seed=4&formed=1&clock=3600",
       "cells": 30, "times": [10, 100, 1000, 3000, 6000], "board-settings": {"read_voltage_v": 0.18}},
      {"id": "disturb", "type": "read-disturb", "device": "sim:?seed=4&formed=1",
       "cells": 16, "reads": 40, "points": 5}]})")
                                      .dump();
  const int rc = test::run(
      {binary, "campaign", "run", campaign_file.string(), "--out", dir.string(), "--quiet"}, log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto retention = common::read_json_file(dir / "steps" / "retention" / bench::kRecordFile);
  CHECK(retention["status"] == "completed");
  CHECK(retention["board_settings"]["read_voltage_v"] == 0.18);
  CHECK(retention["result"]["time_points"] == 5);
  CHECK(fs::exists(dir / "steps" / "retention" / "retention.h5"));
  const auto disturb = common::read_json_file(dir / "steps" / "disturb" / bench::kRecordFile);
  CHECK(disturb["status"] == "completed");
  CHECK(fs::exists(dir / "steps" / "disturb" / "read_disturb.csv"));
  for (const auto& p : {campaign_file, dir, log}) fs::remove_all(p);
}

TEST_CASE("a campaign's measurement step stopped by Ctrl-C continues with campaign resume",
          "[measure][campaign][resume]") {
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb4.log"),
                              {"--formed", "--seed", "8", "--clock", "3600"});
  const fs::path campaign_file = scratch("resume-campaign.json"), dir = scratch("resume-run"),
                 log = scratch("resume-run.log");
  std::ofstream(campaign_file) << nlohmann::json(
                                      {{"campaign", "bench-resume"},
                                       {"steps",
                                        {{{"id", "retention"},
                                          {"type", "retention"},
                                          {"device", board.address()},
                                          {"cells", 24},
                                          {"times", {10, 100, 1000, 5000, 10000, 20000}}}}}})
                                      .dump();
  const pid_t pid = test::spawn(binary,
                                {binary, "campaign", "run", campaign_file.string(), "--out",
                                 dir.string(), "--quiet", "--yes"},
                                log);
  // Ctrl-C once two time points are saved.
  const fs::path progress = dir / "steps" / "retention" / bench::kProgressFile;
  for (int i = 0; i < 2000; ++i) {
    if (fs::exists(progress)) {
      try {
        if (common::read_json_file(progress)["state"]["next_point"] >= 2) break;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGINT);
  INFO(test::read_file(log));
  CHECK(test::wait_exit(pid) == 130);
  const auto stopped = common::read_json_file(dir / "steps" / "retention" / bench::kRecordFile);
  CHECK(stopped["status"] == "interrupted");
  CHECK(stopped["result"]["time_points"] < 6);

  const int rc = test::run({binary, "campaign", "resume", dir.string(), "--quiet", "--yes"}, log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto done = common::read_json_file(dir / "steps" / "retention" / bench::kRecordFile);
  CHECK(done["status"] == "completed");
  CHECK(done["resumed"] == 1);
  CHECK(done["result"]["time_points"] == 6);
  for (const auto& p : {campaign_file, dir, log}) fs::remove_all(p);
}
