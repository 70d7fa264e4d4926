// The cell map (docs/bench.md, "Measurements", "Cell map") on the simulated board: one array
// read and the pulse counters classify every cell as the simulator's own state says (formed,
// unformed, unformable, stuck-at defects) on a pristine and on a factory-formed chip; the
// files (HDF5 classes with their names, CSV, a valid PNG with its legend); it needs no
// permission because it sends no pulse.
#include <hdf5.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "app/bench/cell_map.hpp"
#include "app/bench/measurement.hpp"
#include "app/cli/commands.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "devices/device_model.hpp"
#include "sim/chip.hpp"
#include "tests/app/support/h5_read.hpp"
#include "tests/app/support/measure_checks.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using bench::CellClass;

namespace {

fs::path scratch(const std::string& name) { return test::scratch_path("metaplast-cellmap", name); }

// Ten times the default defects (~160 defective cells in the array).
devices::Calibration map_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.yield.defect_fraction = 0.01;
  return c;
}

// The simulator's truth: stuck-at defects are stuck; on a factory-formed chip the other cells
// are formed, except the unformable defects (pulsed at the factory, still pristine); on a
// pristine chip they are unformed.
CellClass truth(const sim::Cell& c, bool formed) {
  switch (c.traits.defect) {
    case devices::CellDefect::stuck_hcs:
    case devices::CellDefect::stuck_lcs:
      return CellClass::stuck;
    case devices::CellDefect::unformable:
      return formed ? CellClass::unformable : CellClass::unformed;
    default:
      return formed ? CellClass::formed : CellClass::unformed;
  }
}

}  // namespace

TEST_CASE("a cell map classifies every cell as the simulator made it", "[measure][cell-map]") {
  const auto cal = map_calibration();
  const fs::path cal_file = scratch("map-cal.json");
  devices::save_calibration(cal, cal_file);
  const sim::Chip chip(devices::DeviceModel(cal), 21);
  for (const bool formed : {false, true}) {
    const fs::path out = scratch(formed ? "formed" : "pristine");
    bench::CellMapMeasurement m({});
    const std::string device = std::string("sim:?seed=21") + (formed ? "&formed=1" : "") +
                               "&calibration=" + cal_file.string();
    auto h = test::harness(device, out);
    h.session.yes = false;  // no pulse: no permission needed
    const auto outcome = bench::run_measurement(m, h);
    REQUIRE(outcome.status == bench::MeasurementStatus::completed);
    REQUIRE(m.classes().size() == 16384u);
    // Defective cells exactly; the others within the tails of the pristine and LCS reads at
    // the threshold (about 1.2 cells of 16384 expected on this model: docs/bench.md).
    std::size_t wrong_defects = 0, wrong_others = 0, stuck = 0, unformable = 0;
    for (int i = 0; i < sim::Chip::kCells; ++i) {
      const auto& cell = chip.cell(i);
      const CellClass expected = truth(cell, formed);
      const bool wrong = m.classes()[static_cast<std::size_t>(i)] != expected;
      (cell.traits.defect == devices::CellDefect::none ? wrong_others : wrong_defects) += wrong;
      stuck += m.classes()[static_cast<std::size_t>(i)] == CellClass::stuck;
      unformable += m.classes()[static_cast<std::size_t>(i)] == CellClass::unformable;
    }
    INFO((formed ? "formed" : "pristine") << " chip: " << outcome.result.dump().substr(0, 400));
    CHECK(wrong_defects == 0);
    CHECK(wrong_others <= 3);
    CHECK(stuck > 40);  // the defects are there
    CHECK(outcome.result["classes"]["stuck"] == stuck);
    CHECK(outcome.result["classes"]["unformable"] == unformable);
    CHECK(outcome.result["stuck_cells"].size() == stuck);
    if (formed) CHECK(unformable > 20);

    const hid_t h5 = H5Fopen((out / "cell_map.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(h5 >= 0);
    CHECK(test::string_attribute(h5, "kind") == "cell-map");
    const auto codes = test::dataset<std::uint8_t>(h5, "class", H5T_NATIVE_UINT8, 16384);
    for (std::size_t i = 0; i < codes.size(); i += 97) {
      CHECK(codes[i] == static_cast<std::uint8_t>(m.classes()[i]));
    }
    const hid_t set = H5Dopen2(h5, "class", H5P_DEFAULT);
    CHECK(test::string_attribute(set, "class_2") == "unformable");
    CHECK(test::string_attribute(set, "class_3") == "stuck");
    H5Dclose(set);
    H5Fclose(h5);
    test::check_csv(out / "cell_map.csv", outcome.record.board.serial,
                    "row,col,conductance_us,class");
    test::check_png(out / "cell_map.png");
    fs::remove_all(out);
  }
  fs::remove(cal_file);
}

TEST_CASE("the cell-map rule", "[measure][cell-map]") {
  using bench::classify_cell;
  // threshold 0.3 uS, stuck above 320 uS.
  CHECK(classify_cell(0.05, 0, 0.3, 320) == CellClass::unformed);
  CHECK(classify_cell(0.05, -1, 0.3, 320) == CellClass::unformed);  // no counters
  CHECK(classify_cell(0.05, 3, 0.3, 320) == CellClass::unformable);
  CHECK(classify_cell(40, 1, 0.3, 320) == CellClass::formed);
  CHECK(classify_cell(40, -1, 0.3, 320) == CellClass::formed);
  CHECK(classify_cell(40, 0, 0.3, 320) == CellClass::stuck);  // a filament no FORM made
  CHECK(classify_cell(500, 1, 0.3, 320) == CellClass::stuck);
  CHECK(classify_cell(500, -1, 0.3, 320) == CellClass::stuck);
}

TEST_CASE("a cell map needs no --yes on a board that is not simulated", "[measure][cell-map]") {
  test::SimboardProcess board(test::SimboardProcess::Link::pty, scratch("pty.log"),
                              {"--formed", "--seed", "5"});
  const auto pulses = [&board] {
    std::uint64_t n = 0;
    for (const auto& c : board.counters()) n += c.set_pulses + c.reset_pulses + c.form_pulses;
    return n;
  };
  const std::uint64_t before = pulses();
  const fs::path out = scratch("pty-map");
  CLI::App app;
  app.require_subcommand(1);
  cli::add_measure_command(app);
  std::vector<std::string> args{"measure",       "cell-map", "--device",
                                board.address(), "--out",    out.string()};
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
  const auto record = common::read_json_file(out / bench::kRecordFile);
  CHECK(record["status"] == "completed");
  CHECK(record["result"]["classes"]["formed"] > 16000);
  CHECK(pulses() == before);
  fs::remove_all(out);
}
