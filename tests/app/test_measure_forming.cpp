// The forming ramp (docs/bench.md, "Measurements", "Forming") on the simulated board: it forms
// every formable cell at the first ramp step at or above the cell's forming voltage, never pulses
// a cell again once formed (nor one formed before the ramp), lists exactly the cells the
// simulator made impossible to form, and recovers the model's median and sigma within the
// tolerance stated below; a stop leaves the board safe and --resume gives the data of an
// uninterrupted ramp; malformed campaign parameters name their JSON path; a board that is not
// simulated is refused without --yes.
#include <hdf5.h>
#include <hdf5_hl.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/bench/forming.hpp"
#include "app/bench/measurement.hpp"
#include "app/campaign/campaign.hpp"
#include "app/cli/commands.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "devices/device_model.hpp"
#include "protocols/board_messages.hpp"
#include "sim/chip.hpp"
#include "tests/app/support/h5_read.hpp"
#include "tests/app/support/measure_checks.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) { return test::scratch_path("metaplast-forming", name); }

// The default model with ten times the defects (about 80 unformable and 80 stuck-at cells in
// the array), so that the list of cells that never form is not a handful.
devices::Calibration defect_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.yield.defect_fraction = 0.01;
  return c;
}

fs::path write_calibration(const devices::Calibration& c, const std::string& name) {
  const fs::path file = scratch(name);
  devices::save_calibration(c, file);
  return file;
}

// What the ramp must find, from the simulated chip itself (the seed and the model draw the same
// chip as the board's): the step each cell forms at (FORM at V forms a pristine cell when
// V >= V_f, width = the reference width), kFormedBefore for a cell that reads formed before the
// ramp (a stuck-at-HCS defect), kNotFormed for the unformable defects, the stuck-at-LCS defects
// (they read below the threshold and no pulse changes them) and the cells whose V_f lies above
// the ramp.
std::vector<int> expected_steps(const devices::Calibration& cal, std::uint64_t seed,
                                const bench::FormingOptions& o) {
  const sim::Chip chip(devices::DeviceModel(cal), seed);
  const auto ramp = bench::forming_ramp(o);
  std::vector<int> steps;
  for (std::size_t i = 0; i < o.block.size(); ++i) {
    const auto cell = o.block.cell(i);
    const auto& c = chip.cell(cell.row * sim::Chip::kColumns + cell.col);
    int step = bench::kNotFormed;
    if (c.traits.defect == devices::CellDefect::stuck_hcs) {
      step = bench::kFormedBefore;
    } else if (c.traits.defect == devices::CellDefect::none) {
      for (std::size_t k = 0; k < ramp.size(); ++k) {
        if (ramp[k] >= c.traits.forming_voltage_v) {
          step = static_cast<int>(k);
          break;
        }
      }
    }
    steps.push_back(step);
  }
  return steps;
}

std::size_t differences(const std::vector<int>& a, const std::vector<int>& b) {
  REQUIRE(a.size() == b.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace

// Tolerance: the whole array (16384 cells, a 2.4..3.6 V ramp in 0.05 V steps at the 1 us
// reference width) gives the median within 0.01 V and sigma within 0.01 V of the model's
// 3.0 V and 0.15 V (standard errors ~0.0012 V and ~0.0008 V).
TEST_CASE("a forming ramp over the whole array forms every formable cell and fits V_f",
          "[measure][forming]") {
  const auto cal = defect_calibration();
  const fs::path cal_file = write_calibration(cal, "forming-cal.json");
  const fs::path out = scratch("whole-array");
  bench::FormingOptions o;
  o.block = {0, 0, 128, 128};
  bench::FormingMeasurement m(o);
  const auto outcome = bench::run_measurement(
      m, test::harness("sim:?seed=11&calibration=" + cal_file.string(), out));
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);
  const auto expected = expected_steps(cal, 11, o);
  CHECK(differences(m.forming_step(), expected) == 0);
  std::size_t never = 0;
  for (int k : expected) never += k == bench::kNotFormed;
  CHECK(never > 40);  // the defects are there
  CHECK(m.unformed_cells().size() == never);

  const auto fit = m.fit();
  REQUIRE(fit);
  INFO(outcome.result.dump(2).substr(0, 3000));
  CHECK(fit->median_v.value == Approx(cal.forming.median_voltage_v).margin(0.01));
  CHECK(fit->sigma_v.value == Approx(cal.forming.sigma_v).margin(0.01));
  CHECK(fit->identifiable);
  CHECK(fit->width_shift_v == 0);  // 1 us is the reference width
  const auto record = common::read_json_file(out / bench::kRecordFile);
  const auto& c = record["result"]["calibration"];
  CHECK(c["/forming/median_voltage_v"]["value"].get<double>() == fit->median_reference_v);
  CHECK(c["/forming/sigma_v"]["identifiable"] == true);
  CHECK(c["/forming/sigma_v"].contains("note"));
  CHECK(record["result"]["unformed_cells"].size() == never);

  // The files: HDF5 with the map, the ramp's reads and their scales; CSV; both PNGs.
  const hid_t h5 = H5Fopen((out / "forming.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  CHECK(test::string_attribute(h5, "kind") == "forming");
  CHECK(test::string_attribute(h5, "board_serial") == outcome.record.board.serial);
  const auto voltage =
      test::dataset<double>(h5, "forming_voltage_v", H5T_NATIVE_DOUBLE, o.block.size());
  const auto ramp = bench::forming_ramp(o);
  for (std::size_t i = 0; i < voltage.size(); ++i) {
    if (expected[i] >= 0) CHECK(voltage[i] == ramp[static_cast<std::size_t>(expected[i])]);
  }
  const hid_t reads = H5Dopen2(h5, "read_us", H5P_DEFAULT);
  const hid_t scale = H5Dopen2(h5, "ramp_voltage_v", H5P_DEFAULT);
  const hid_t col = H5Dopen2(h5, "col", H5P_DEFAULT);
  CHECK(test::string_attribute(reads, "units").rfind("uS", 0) == 0);
  CHECK(test::string_attribute(scale, "units").rfind("V", 0) == 0);
  CHECK(H5DSis_attached(reads, scale, 0) > 0);
  CHECK(H5DSis_attached(reads, col, 2) > 0);
  H5Dclose(col);
  H5Dclose(scale);
  H5Dclose(reads);
  H5Fclose(h5);
  test::check_csv(out / "forming.csv", outcome.record.board.serial,
                  "row,col,status,forming_voltage_v,forming_step,initial_us,last_us");
  test::check_png(out / "forming.png");
  test::check_png(out / "forming_map.png");
  // V_BL drawn with its subscript (gnuplot enhanced text), not with the braces escaped.
  CHECK_THAT(test::read_file(out / "forming_map.gp"),
             Catch::Contains("set cblabel 'Forming voltage V_{BL} (V)'"));
  CHECK_THAT(test::read_file(out / "forming.gp"),
             Catch::Contains("set xlabel 'FORM bit-line voltage V_{BL} (V)'"));
  fs::remove_all(out);
  fs::remove(cal_file);
}

TEST_CASE("a forming fit converts its width to the reference width", "[measure][forming]") {
  // Cells formed at 3.0 V (step 1) and 3.1 V (step 2) of a 0.1 V ramp at 100 ns: midpoints 2.95
  // and 3.05 V; 100 ns is a decade below the 1 us reference: -0.15 V.
  const std::vector<double> ramp{2.9, 3.0, 3.1};
  std::vector<int> steps(20, 1);
  for (std::size_t i = 10; i < 20; ++i) steps[i] = 2;
  steps.push_back(bench::kFormedBefore);
  steps.push_back(bench::kNotFormed);
  const auto fit = bench::fit_forming(ramp, 3, steps, 0.1, 100, devices::FormingModel{});
  CHECK(fit.ramp_cells == 21);
  CHECK(fit.formed == 20);
  CHECK(fit.unformed == 1);
  CHECK(fit.median_v.value == Approx(3.0));
  CHECK(fit.width_shift_v == Approx(-0.15));
  CHECK(fit.median_reference_v == Approx(2.85));
  CHECK(fit.formed_fraction == std::vector<double>{0, 10.0 / 21, 20.0 / 21});
}

TEST_CASE("a forming ramp above the station limits is refused before any pulse",
          "[measure][forming]") {
  const fs::path out = scratch("too-high");
  bench::FormingOptions o;
  o.stop_v = 3.9;  // the default station allows 3.6 V on the bit line
  bench::FormingMeasurement m(o);
  CHECK_THROWS_WITH(bench::run_measurement(m, test::harness("sim:?seed=2", out)),
                    Catch::Contains("form_bl_voltage_v") && Catch::Contains("3.9"));
  CHECK(m.forming_step().empty());  // not even read
  fs::remove_all(out);
}

TEST_CASE("a stopped forming ramp leaves the board safe and resumes to the same forming map",
          "[measure][forming][resume]") {
  const auto cal = defect_calibration();
  const fs::path cal_file = write_calibration(cal, "resume-cal.json");
  bench::FormingOptions o;
  o.block = {8, 16, 16, 32};
  const std::vector<std::string> args{"--seed", "12", "--calibration", cal_file.string()};
  std::vector<int> whole;
  {
    test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb1.log"), args);
    const fs::path out = scratch("whole");
    bench::FormingMeasurement m(o);
    REQUIRE(bench::run_measurement(m, test::harness(board.address(), out)).status ==
            bench::MeasurementStatus::completed);
    whole = m.forming_step();
    fs::remove_all(out);
  }
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("sb2.log"), args);
  const fs::path out = scratch("parts");
  {
    bench::FormingMeasurement m(o);
    auto h = test::harness(board.address(), out);
    h.stop_requested = [&m] { return m.batches_done() >= 10; };
    const auto outcome = bench::run_measurement(m, h);
    CHECK(outcome.status == bench::MeasurementStatus::interrupted);
    CHECK_THAT(outcome.resume_hint, Catch::Contains("--resume " + out.string()));
    CHECK(fs::exists(out / "forming.h5"));
  }
  CHECK((test::board_state_flags(board.address()) & protocols::board_state::kSafe) != 0);
  bench::FormingMeasurement m(o);
  auto h = test::harness(board.address(), out);
  h.out.clear();
  h.resume = out;
  const auto outcome = bench::run_measurement(m, h);
  CHECK(outcome.status == bench::MeasurementStatus::completed);
  CHECK(outcome.record.resumed == 1);
  CHECK(m.forming_step() == whole);
  CHECK(differences(m.forming_step(), expected_steps(cal, 12, o)) == 0);
  // Never pulsed again once formed, never at all when formed before the ramp: a cell formed at
  // step k got k + 1 FORM pulses, an unformed one one per step (but for a stuck-at-LCS defect:
  // the board applies no FORM to a cell that is not pristine).
  const auto counters = board.counters();
  const auto ramp = bench::forming_ramp(o);
  const sim::Chip chip(devices::DeviceModel(cal), 12);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < o.block.size(); ++i) {
    const auto cell = o.block.cell(i);
    const auto& c = counters[cell.row * 128u + cell.col];
    const auto pulses = c.form_pulses;
    const int k = m.forming_step()[i];
    const bool stuck_lcs = chip.cell(cell.row * sim::Chip::kColumns + cell.col).traits.defect ==
                           devices::CellDefect::stuck_lcs;
    const std::uint32_t expected = k == bench::kFormedBefore || stuck_lcs ? 0
                                   : k == bench::kNotFormed               ? ramp.size()
                                                            : static_cast<std::uint32_t>(k + 1);
    if (pulses != expected) {
      ++wrong;
      INFO("cell " << cell.row << "," << cell.col << " step " << k << ": " << c.form_pulses
                   << " FORM, " << c.set_pulses << " SET pulses");
      CHECK(pulses == expected);
    }
  }
  CHECK(wrong == 0);
  fs::remove_all(out);
  fs::remove(cal_file);
}

namespace {

// The error of a campaign whose second step is `step`.
std::string campaign_error(const std::string& step) {
  return test::campaign_error(R"({"campaign": "c", "steps": [{"type": "report"}, )" + step + "]}");
}

}  // namespace

TEST_CASE("malformed forming and cell-map steps of a campaign name their JSON path",
          "[measure][forming][campaign]") {
  const auto c = campaign::parse_campaign(nlohmann::json::parse(R"({"campaign": "c", "steps": [
        {"id": "f", "type": "forming", "rows": 128, "cols": 128, "stop-v": 3.5},
        {"id": "m", "type": "cell-map", "counters": false}]})"),
                                          "camp.json");
  REQUIRE(c.steps.size() == 2);
  CHECK(c.uses_board());
  CHECK(c.steps[0].options["step-v"] == 0.05);  // the default filled in
  CHECK(c.steps[1].options["counters"] == false);
  const auto f = [](const std::string& options) {
    return campaign_error(R"({"id": "f", "type": "forming", )" + options + "}");
  };
  CHECK_THAT(f(R"("step-v": -0.1)"), Catch::Contains("camp.json: /steps/1/step-v: must be"));
  CHECK_THAT(f(R"("start-v": "low")"), Catch::Contains("/steps/1/start-v"));
  CHECK_THAT(f(R"("stop-v": 2.0)"), Catch::Contains("/steps/1/stop-v"));
  CHECK_THAT(f(R"("rows": 0)"), Catch::Contains("/steps/1/rows"));
  CHECK_THAT(f(R"("row0": 120, "rows": 16)"), Catch::Contains("/steps/1/row0"));
  CHECK_THAT(f(R"("width-ns": 0)"), Catch::Contains("/steps/1/width-ns"));
  CHECK_THAT(f(R"("compliance-v": 11)"), Catch::Contains("/steps/1/compliance-v"));
  CHECK_THAT(f(R"("threshold-us": -1)"), Catch::Contains("/steps/1/threshold-us"));
  CHECK_THAT(f(R"("stop-volts": 3)"),
             Catch::Contains("/steps/1/stop-volts") && Catch::Contains("unknown"));
  const auto m = [](const std::string& options) {
    return campaign_error(R"({"id": "m", "type": "cell-map", )" + options + "}");
  };
  CHECK_THAT(m(R"("counters": 1)"), Catch::Contains("/steps/1/counters"));
  CHECK_THAT(m(R"("stuck-above-us": -5)"), Catch::Contains("/steps/1/stuck-above-us"));
  CHECK_THAT(m(R"("formed-threshold-us": "x")"), Catch::Contains("/steps/1/formed-threshold-us"));
}

TEST_CASE("forming and cell-map run as campaign steps", "[measure][forming][campaign]") {
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  const fs::path state = scratch("chip.state"), campaign_file = scratch("forming-campaign.json"),
                 dir = scratch("forming-run"), log = scratch("forming-run.log");
  const std::string device = "sim:?seed=3&state=" + state.string();
  std::ofstream(campaign_file) << nlohmann::json::parse(R"({"campaign": "bench", "steps": [
      {"id": "forming", "type": "forming", "rows": 8, "cols": 16, "step-v": 0.1},
      {"id": "map", "type": "cell-map"}]})")
                                      .dump();
  auto c = nlohmann::json::parse(std::ifstream(campaign_file));
  for (auto& step : c["steps"]) step["device"] = device;
  std::ofstream(campaign_file) << c.dump();
  const int rc = test::run(
      {binary, "campaign", "run", campaign_file.string(), "--out", dir.string(), "--quiet"}, log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto forming = common::read_json_file(dir / "steps" / "forming" / bench::kRecordFile);
  CHECK(forming["status"] == "completed");
  CHECK(forming["result"]["calibration"].contains("/forming/median_voltage_v"));
  CHECK(fs::exists(dir / "steps" / "forming" / "forming_map.png"));
  // The map of the same chip afterwards: the block formed, the rest pristine.
  const auto map = common::read_json_file(dir / "steps" / "map" / bench::kRecordFile);
  CHECK(map["status"] == "completed");
  const auto classes = map["result"]["classes"];
  CHECK(classes["formed"].get<int>() + classes["unformable"].get<int>() +
            classes["stuck"].get<int>() >=
        128 - 2);
  CHECK(classes["unformed"].get<int>() > 16000);
  for (const auto& p : {state, campaign_file, dir, log}) fs::remove_all(p);
}
