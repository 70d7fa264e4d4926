// The endurance measurement (app/bench/endurance.*, docs/bench.md "Endurance") on the simulated
// board with a short-lived chip (median 400 SET + RESET pulses to failure): the fit recovers the
// simulator's endurance parameters within the tolerances stated here; the files are
// self-describing (HDF5 scales and units, CSV header, valid PNGs); a stop leaves the board safe
// and --resume continues from the saved cycle count and alive set; the station's limits and the
// permission rule hold before any pulse; malformed campaign parameters name their JSON path.
#include <hdf5.h>
#include <hdf5_hl.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "app/bench/endurance.hpp"
#include "app/bench/level_plot.hpp"
#include "app/bench/measurement.hpp"
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
using test::campaign_error;
using test::check_png;
using test::number_attribute;
using test::string_attribute;

namespace {

fs::path scratch(const std::string& name) {
  return test::scratch_path("metaplast-endurance", name);
}

// A chip that wears out in a few hundred pulses; no defects (every failure is wear-out), no
// relaxation (a resumed run sees the same conductances as an uninterrupted one).
devices::Calibration short_lived(double stuck_hcs_probability = 0.4) {
  devices::Calibration c = devices::Calibration::defaults();
  c.endurance.median_cycles = 400;  // SET + RESET pulses
  c.endurance.sigma_ln = 0.5;
  c.endurance.stuck_hcs_probability = stuck_hcs_probability;
  c.yield.defect_fraction = 0.0;
  c.relaxation.enabled = false;
  return c;
}

fs::path write_calibration(const devices::Calibration& c, const std::string& name) {
  const fs::path file = scratch(name);
  devices::save_calibration(c, file);
  return file;
}

bench::EnduranceOptions region(int last_row, int last_col, std::uint64_t cycles) {
  bench::EnduranceOptions o;
  o.rows = {0, last_row};
  o.cols = {0, last_col};
  o.cycles = cycles;
  return o;
}

}  // namespace

// Synthetic data: 400 cells, log-normal pulses to failure (median 800, sigma 0.6), read at 30
// log-spaced cycle counts up to 1500 cycles (some cells censored): within 3 standard errors.
TEST_CASE("the censored log-normal fit recovers median and sigma from read-point intervals",
          "[measure][endurance][fit]") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> threshold(std::log(800.0), 0.6);
  bench::EnduranceOptions o = region(0, 0, 1500);
  o.points = 30;
  const auto reads = bench::endurance_read_cycles(o);
  std::vector<bench::FailureInterval> cells;
  for (int i = 0; i < 400; ++i) {
    const double t = threshold(rng);
    const double p0 = 1;
    bench::FailureInterval f;
    std::size_t k = 0;
    while (k < reads.size() && p0 + 2.0 * static_cast<double>(reads[k]) < t) ++k;
    if (k == reads.size()) {
      f.low_pulses = p0 + 2.0 * static_cast<double>(reads.back());
    } else {
      f.low_pulses = k == 0 ? p0 : p0 + 2.0 * static_cast<double>(reads[k - 1]);
      f.high_pulses = p0 + 2.0 * static_cast<double>(reads[k]);
    }
    cells.push_back(f);
  }
  const auto fit = bench::fit_lognormal_failures(cells);
  CHECK(fit.censored > 0);
  REQUIRE(fit.median_pulses.standard_error);
  REQUIRE(fit.sigma_ln.standard_error);
  CHECK(std::fabs(fit.median_pulses.value - 800) < 3 * *fit.median_pulses.standard_error);
  CHECK(std::fabs(fit.sigma_ln.value - 0.6) < 3 * *fit.sigma_ln.standard_error);
  CHECK(fit.median_pulses.identifiable);
  CHECK(fit.sigma_ln.identifiable);
  // Nothing failed: nothing to fit.
  CHECK_THROWS_WITH(bench::fit_lognormal_failures({{100, std::nullopt}}),
                    Catch::Contains("no cell failed"));
}

// Tolerances (256 cells, rows and columns 0..15, 500 cycles read at 40 log-spaced points; the
// simulator's median 400 pulses = 200 cycles, sigma_ln 0.5, stuck-HCS probability 0.4): the
// median within 10 %, sigma_ln within 0.1 (absolute), the stuck-HCS probability within 0.1.
TEST_CASE("endurance recovers the simulator's median, sigma and stuck-HCS share",
          "[measure][endurance]") {
  const auto calibration = short_lived();
  const fs::path cal = write_calibration(calibration, "endurance-cal.json");
  const fs::path out = scratch("endurance");
  bench::EnduranceMeasurement m(region(15, 15, 500));
  const auto outcome = bench::run_measurement(
      m, test::harness("sim:?seed=1&formed=1&calibration=" + cal.string(), out));
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const auto fit = m.fit();
  REQUIRE(fit);
  INFO(outcome.result.dump(2));
  const auto& e = calibration.endurance;
  CHECK(m.cells().size() == 256);
  CHECK(fit->dead_on_arrival == 0);
  CHECK(fit->censored > 0);  // a few cells outlive 500 cycles
  CHECK(fit->median_pulses.value == Approx(e.median_cycles).epsilon(0.10));
  CHECK(fit->median_cycles == Approx(e.median_cycles / 2).epsilon(0.10));
  CHECK(fit->sigma_ln.value == Approx(e.sigma_ln).margin(0.1));
  CHECK(fit->stuck_hcs_probability.value == Approx(e.stuck_hcs_probability).margin(0.1));
  CHECK(fit->median_pulses.identifiable);
  CHECK(fit->sigma_ln.identifiable);
  CHECK(fit->stuck_hcs_probability.identifiable);
  // Failed cells were no longer pulsed or read: NaN after their failure point.
  const auto failed = m.failure_points();
  for (std::size_t c = 0; c < failed.size(); ++c) {
    if (failed[c] && *failed[c] + 1 < m.read_cycles().size()) {
      CHECK(std::isnan(m.lrs_us().back()[c]));
    }
  }

  // measurement.json carries the calibration convention.
  const auto record = common::read_json_file(out / bench::kRecordFile);
  CHECK(record["kind"] == "endurance");
  CHECK(record["status"] == "completed");
  const auto& calib = record["result"]["calibration"];
  for (const char* key :
       {"/endurance/median_cycles", "/endurance/sigma_ln", "/endurance/stuck_hcs_probability"}) {
    INFO(key);
    REQUIRE(calib.contains(key));
    CHECK(calib[key]["value"].is_number());
    CHECK(calib[key]["standard_error"].is_number());
    CHECK(calib[key]["identifiable"] == true);
    CHECK_FALSE(calib[key]["note"].get<std::string>().empty());
  }

  // HDF5: board identity and settings, units, the cell and cycle scales attached.
  const hid_t h5 = H5Fopen((out / "endurance.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  const instruments::BoardSettings defaults;
  test::check_settings_attributes(h5, defaults);
  CHECK(string_attribute(h5, "board_serial") == outcome.record.board.serial);
  CHECK(string_attribute(h5, "kind") == "endurance");
  const hid_t cell = H5Dopen2(h5, "cell", H5P_DEFAULT);
  const hid_t cycle = H5Dopen2(h5, "cycle", H5P_DEFAULT);
  REQUIRE(cell >= 0);
  REQUIRE(cycle >= 0);
  CHECK(H5DSis_scale(cycle) > 0);
  CHECK_FALSE(string_attribute(cycle, "units").empty());
  for (const char* name : {"g_lrs_us", "g_hrs_us"}) {
    const hid_t g = H5Dopen2(h5, name, H5P_DEFAULT);
    REQUIRE(g >= 0);
    CHECK(string_attribute(g, "units").rfind("uS", 0) == 0);
    CHECK(H5DSis_attached(g, cell, 0) > 0);
    CHECK(H5DSis_attached(g, cycle, 1) > 0);
    H5Dclose(g);
  }
  const hid_t ctf = H5Dopen2(h5, "cells/cycles_to_failure", H5P_DEFAULT);
  REQUIRE(ctf >= 0);
  CHECK(string_attribute(ctf, "units").rfind("cycles", 0) == 0);
  CHECK(H5DSis_attached(ctf, cell, 0) > 0);
  H5Dclose(ctf);
  const hid_t fit_group = H5Gopen2(h5, "fit", H5P_DEFAULT);
  CHECK(number_attribute(fit_group, "median_pulses") == Approx(fit->median_pulses.value));
  H5Gclose(fit_group);
  H5Dclose(cycle);
  H5Dclose(cell);
  H5Fclose(h5);

  // CSV: the settings and board lines, then the columns.
  std::ifstream csv(out / "endurance.csv");
  std::string line;
  std::getline(csv, line);
  CHECK(line.rfind("# board settings: read_voltage_v=", 0) == 0);
  while (std::getline(csv, line) && line.rfind("#", 0) == 0) {
  }
  CHECK(line == "cell,row,col,initial_pulses,point,cycle,g_lrs_us,g_hrs_us,window_open");
  check_png(out / "endurance.png");
  check_png(out / "endurance_survival.png");
  CHECK_THAT(test::read_file(out / "endurance.gp"), Catch::Contains("at least 5 cells alive"));
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("the endurance window plot leaves out read points with fewer than 5 cells alive",
          "[measure][endurance]") {
  const double nan = std::nan("");
  const std::vector<double> x{1, 10, 100};
  // Six cells: all alive at cycle 1, five at 10, four at 100 (NaN: failed earlier).
  const std::vector<std::vector<double>> g{
      {1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, nan}, {1, 2, 3, 4, nan, nan}};
  const std::vector<int> cells(6, 0);
  CHECK(bench::level_curve(0, cells, x, g, 3).x == std::vector<double>{1, 10, 100});
  CHECK(bench::level_curve(0, cells, x, g, 3, 5).x == std::vector<double>{1, 10});
}

TEST_CASE("a stopped endurance measurement leaves the board safe and resumes to the same data",
          "[measure][endurance][resume]") {
  const fs::path cal = write_calibration(short_lived(), "resume-cal.json");
  const std::vector<std::string> args{"--formed", "--seed", "3", "--calibration", cal.string()};
  bench::EnduranceOptions o = region(5, 5, 400);
  o.points = 20;

  std::vector<std::vector<double>> whole;
  std::vector<std::optional<std::size_t>> whole_failures;
  {
    test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb1.log"), args);
    const fs::path out = scratch("whole");
    bench::EnduranceMeasurement m(o);
    REQUIRE(bench::run_measurement(m, test::harness(board.address(), out)).status ==
            bench::MeasurementStatus::completed);
    whole = m.lrs_us();
    whole_failures = m.failure_points();
    fs::remove_all(out);
  }
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb2.log"), args);
  const fs::path out = scratch("parts");
  std::uint64_t stopped_at = 0;
  {
    bench::EnduranceMeasurement m(o);
    auto h = test::harness(board.address(), out);
    h.stop_requested = [&m] { return m.read_points_done() >= 12; };
    const auto outcome = bench::run_measurement(m, h);
    CHECK(outcome.status == bench::MeasurementStatus::interrupted);
    CHECK_THAT(outcome.resume_hint, Catch::Contains("--resume " + out.string()));
    CHECK(fs::exists(out / "endurance.h5"));
    stopped_at = m.cycles_done();
    CHECK(stopped_at < 400);
  }
  CHECK((test::board_state_flags(board.address()) & protocols::board_state::kSafe) != 0);
  const auto progress = common::read_json_file(out / bench::kProgressFile);
  CHECK(progress["state"]["cycles_done"] == stopped_at);
  bench::EnduranceMeasurement m(o);
  auto h = test::harness(board.address(), out);
  h.out.clear();
  h.resume = out;
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::completed);
  CHECK(outcome.record.resumed == 1);
  CHECK(m.cycles_done() > stopped_at);
  // The same requests in the same order: the data and failures of the whole run.
  CHECK(m.failure_points() == whole_failures);
  CHECK(m.lrs_us().size() == whole.size());
  for (std::size_t k = 0; k < whole.size(); ++k) {
    for (std::size_t c = 0; c < whole[k].size(); ++c) {
      if (std::isnan(whole[k][c])) {
        CHECK(std::isnan(m.lrs_us()[k][c]));
      } else {
        CHECK(m.lrs_us()[k][c] == whole[k][c]);
      }
    }
  }
  fs::remove_all(out);
  fs::remove(cal);
}

TEST_CASE("endurance keeps to the station's limits before any pulse", "[measure][endurance]") {
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("limits.log"),
                              {"--formed", "--seed", "5"});
  const fs::path station = scratch("station.json");
  std::ofstream(station) << R"({"station": "bench", "allow_pulses": true,
      "limits": {"max_compliance_ua": 50, "max_sl_voltage_v": 1.6}})";
  const std::uint64_t before = board.total_pulses();
  {
    // The highest SET level (80 uA) is above the station's compliance limit.
    bench::EnduranceMeasurement m(region(3, 3, 20));
    auto h = test::harness(board.address(), scratch("limit-icc"));
    h.session.station = station;
    CHECK_THROWS_WITH(bench::run_measurement(m, h),
                      Catch::Contains("max_compliance_ua") && Catch::Contains("--set-level"));
  }
  {
    // A RESET amplitude above the station's max_sl_voltage_v is refused with the settings.
    auto o = region(3, 3, 20);
    o.set_level = 4;
    bench::EnduranceMeasurement m(o);
    auto h = test::harness(board.address(), scratch("limit-sl"));
    h.session.station = station;
    h.session.settings = {{"reset_sl_voltage_v", {2.0}}};
    CHECK_THROWS_WITH(bench::run_measurement(m, h), Catch::Contains("max_sl_voltage_v"));
  }
  CHECK(board.total_pulses() == before);
  // Within the limits it runs.
  auto o = region(3, 3, 20);
  o.set_level = 4;
  bench::EnduranceMeasurement m(o);
  auto h = test::harness(board.address(), scratch("limit-ok"));
  h.session.station = station;
  CHECK(bench::run_measurement(m, h).status == bench::MeasurementStatus::completed);
  CHECK(board.total_pulses() == before + 16 * 2 * 20);
  for (const char* d : {"limit-icc", "limit-sl", "limit-ok"}) fs::remove_all(scratch(d));
  fs::remove(station);
}

TEST_CASE("endurance options name what is wrong", "[measure][endurance][options]") {
  auto o = region(3, 3, 100);
  o.rows.clear();
  CHECK_THROWS_WITH(bench::check_endurance_options(o), Catch::Contains("--rows"));
  o = region(3, 3, 100);
  o.window_factor = 1;
  CHECK_THROWS_WITH(bench::check_endurance_options(o), Catch::Contains("--window-factor"));
  o = region(3, 3, 1000);
  o.read_every = 100;
  CHECK(bench::endurance_read_cycles(o) ==
        std::vector<std::uint64_t>{1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000});
  o.read_every = 0;
  o.points = 4;
  CHECK(bench::endurance_read_cycles(o) == std::vector<std::uint64_t>{1, 10, 100, 1000});
}

TEST_CASE("malformed endurance steps of a campaign name their JSON path",
          "[measure][endurance][campaign]") {
  const auto c = campaign::parse_campaign(nlohmann::json::parse(R"({"campaign": "c", "steps": [
        {"id": "e", "type": "endurance", "rows": [0, 7], "cols": [8, 15], "cycles": 1000}]})"),
                                          "camp.json");
  REQUIRE(c.steps.size() == 1);
  CHECK(c.uses_board());
  CHECK(c.steps[0].options["points"] == 40);  // the default filled in
  const std::string head = R"({"campaign": "c", "steps": [{"type": "report"}, )";
  const std::string step = R"({"id": "e", "type": "endurance", )";
  CHECK_THAT(campaign_error(head + step + R"("cols": [0, 3]}]})"),
             Catch::Contains("camp.json: /steps/1/rows"));
  CHECK_THAT(campaign_error(head + step + R"("rows": [5, 2], "cols": [0, 3]}]})"),
             Catch::Contains("/steps/1/rows"));
  CHECK_THAT(campaign_error(head + step + R"("rows": [0, 3], "cols": "all"}]})"),
             Catch::Contains("/steps/1/cols"));
  CHECK_THAT(campaign_error(head + step + R"("rows": [0, 3], "cols": [0, 3], "cycles": 0}]})"),
             Catch::Contains("/steps/1/cycles"));
  CHECK_THAT(
      campaign_error(head + step + R"("rows": [0, 3], "cols": [0, 3], "window-factor": 0.5}]})"),
      Catch::Contains("/steps/1/window-factor"));
  CHECK_THAT(
      campaign_error(head + step + R"("rows": [0, 3], "cols": [0, 3], "confirm-points": 0}]})"),
      Catch::Contains("/steps/1/confirm-points"));
  CHECK_THAT(campaign_error(head + step + R"("rows": [0, 3], "cols": [0, 3], "cycels": 9}]})"),
             Catch::Contains("/steps/1/cycels") && Catch::Contains("unknown"));
  CHECK_THAT(campaign_error(head + step + R"("rows": [0, 3], "cols": [0, 3],
                                             "board-settings": {"reset_sl": 1.5}}]})"),
             Catch::Contains("/steps/1/board-settings/reset_sl"));
}

TEST_CASE("endurance runs as a campaign step", "[measure][endurance][campaign]") {
  const fs::path cal = write_calibration(short_lived(), "campaign-cal.json");
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  const fs::path campaign_file = scratch("campaign.json"), dir = scratch("campaign-run"),
                 log = scratch("campaign-run.log");
  std::ofstream(campaign_file)
      << nlohmann::json({{"campaign", "bench-endurance"},
                         {"steps",
                          {{{"id", "endurance"},
                            {"type", "endurance"},
                            {"device", "sim:?seed=2&formed=1&calibration=" + cal.string()},
                            {"rows", {0, 3}},
                            {"cols", {0, 7}},
                            {"cycles", 600},
                            {"points", 15}}}}})
             .dump();
  const int rc = test::run(
      {binary, "campaign", "run", campaign_file.string(), "--out", dir.string(), "--quiet"}, log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto record = common::read_json_file(dir / "steps" / "endurance" / bench::kRecordFile);
  CHECK(record["status"] == "completed");
  CHECK(record["result"]["cells"] == 32);
  CHECK(record["result"]["calibration"].contains("/endurance/median_cycles"));
  CHECK(fs::exists(dir / "steps" / "endurance" / "endurance.h5"));
  for (const auto& p : {campaign_file, dir, log, cal}) fs::remove_all(p);
}

TEST_CASE("cells stuck from manufacture are dead on arrival, not wear-out failures",
          "[measure][endurance]") {
  devices::Calibration c = devices::Calibration::defaults();
  c.yield.defect_fraction = 0.2;
  c.yield.unformable_share = 0.0;  // every defect is a stuck cell, which reads as formed or not
  const fs::path cal = write_calibration(c, "defects-cal.json");
  const fs::path out = scratch("defects");
  bench::EnduranceMeasurement m(region(7, 7, 50));
  const auto outcome = bench::run_measurement(
      m, test::harness("sim:?seed=2&formed=1&calibration=" + cal.string(), out));
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  INFO(outcome.result.dump(2));
  const std::size_t doa = outcome.result["dead_on_arrival"].get<std::size_t>();
  CHECK(doa > 0);
  CHECK(outcome.result["failed"] == 0);
  CHECK_FALSE(outcome.result.contains("fit"));  // no wear-out within 50 cycles: nothing to fit
  std::size_t at_first = 0;
  for (const auto& p : m.failure_points()) at_first += p && *p == 0;
  CHECK(at_first == doa);
  CHECK(outcome.result["alive"].get<std::size_t>() + doa == m.cells().size());
  fs::remove_all(out);
  fs::remove(cal);
}
