// The cell map (docs/bench.md, "Measurements", "Cell map") on the simulated board: one array
// read and the pulse counters classify every cell as the simulator's own state says (formed,
// unformed, unformable, stuck-at defects) on a pristine and on a factory-formed chip; the
// files (HDF5 classes with their names, CSV, a valid PNG with its legend); it needs no
// permission because it sends no pulse. A saved whole-array read (--from: `board read` CSV,
// training snapshot, the map's own cell_map.h5 / .csv) gives the classes of the live map of the
// same board state; the chip registry's bad cells are "bad"; every refused file says why.
#include <hdf5.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/bench/cell_map.hpp"
#include "app/bench/measurement.hpp"
#include "app/cli/commands.hpp"
#include "app/hil/chip_registry.hpp"
#include "app/hil/snapshot_h5.hpp"
#include "app/util/h5_file.hpp"
#include "app/util/sha256.hpp"
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

// Runs `metaplast <args>` in process.
void run_cli(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  cli::add_measure_command(app);
  cli::add_board_commands(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
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
    CHECK(test::string_attribute(set, "class_4") == "bad");
    H5Dclose(set);
    H5Fclose(h5);
    test::check_csv(out / "cell_map.csv", outcome.record.board.serial,
                    "row,col,conductance_us,form_pulses,class,reason");
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
  // The chip registry's bad cells: stuck first, then bad over the rest.
  CHECK(classify_cell(40, 1, 0.3, 320, true) == CellClass::bad);
  CHECK(classify_cell(0.05, 3, 0.3, 320, true) == CellClass::bad);
  CHECK(classify_cell(0.05, -1, 0.3, 320, true) == CellClass::bad);
  CHECK(classify_cell(500, 1, 0.3, 320, true) == CellClass::stuck);
  CHECK(classify_cell(40, 0, 0.3, 320, true) == CellClass::stuck);
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
  run_cli({"measure", "cell-map", "--device", board.address(), "--out", out.string()});
  const auto record = common::read_json_file(out / bench::kRecordFile);
  CHECK(record["status"] == "completed");
  CHECK(record["result"]["classes"]["formed"] > 16000);
  CHECK(pulses() == before);
  fs::remove_all(out);
}

namespace {

const std::string kChip = "chip-map-21";

// The in-process simulated chip of these tests: seed 21, formed, ten times the defects.
struct MapChip {
  fs::path cal_file = scratch("from-cal.json");
  std::string device;
  MapChip() {
    devices::save_calibration(map_calibration(), cal_file);
    device = "sim:?seed=21&formed=1&calibration=" + cal_file.string();
  }
  ~MapChip() { fs::remove(cal_file); }
};

struct LiveMap {
  std::vector<CellClass> classes;
  std::vector<double> conductance_us;
  bench::MeasurementOutcome outcome;
};

LiveMap live_map(const std::string& device, const fs::path& out, bench::CellMapOptions o = {}) {
  bench::CellMapMeasurement m(o);
  auto h = test::harness(device, out);
  h.chip = kChip;
  LiveMap live;
  live.outcome = bench::run_measurement(m, h);
  REQUIRE(live.outcome.status == bench::MeasurementStatus::completed);
  live.classes = m.classes();
  live.conductance_us = m.conductance_us();
  return live;
}

// An empty chip registry unless `chips` is given (not the default one of the machine).
bench::MeasurementOutcome map_file(const fs::path& from, const fs::path& out,
                                   const std::string& chip = "", const fs::path& chips = {}) {
  bench::CellMapOptions o;
  o.from = from.string();
  o.chips_dir = chips.empty() ? (fs::temp_directory_path() / "metaplast-cellmap-no-chips").string()
                              : chips.string();
  return bench::map_saved_read(o, chip, out);
}

std::vector<CellClass> classes_of(const fs::path& out) {
  const hid_t h5 = H5Fopen((out / "cell_map.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  const auto codes = test::dataset<std::uint8_t>(h5, "class", H5T_NATIVE_UINT8, 16384);
  H5Fclose(h5);
  std::vector<CellClass> classes;
  for (auto c : codes) classes.push_back(static_cast<CellClass>(c));
  return classes;
}

// The error map_file gives for `from` ("(no error)" when it maps).
std::string from_error(const fs::path& from) {
  const fs::path out = scratch("refused");
  try {
    map_file(from, out);
  } catch (const std::exception& e) {
    CHECK(!fs::exists(out));  // refused before the output folder is made
    return e.what();
  }
  fs::remove_all(out);
  return "(no error)";
}

}  // namespace

TEST_CASE("a cell map from its own cell_map.h5 and cell_map.csv has the live map's classes",
          "[measure][cell-map][from]") {
  const MapChip chip;
  const fs::path live_dir = scratch("live"), from_h5 = scratch("from-h5"),
                 from_csv = scratch("from-csv");
  const auto live = live_map(chip.device, live_dir);
  CHECK(live.outcome.result["counters"] == true);
  for (const auto& [file, out] : {std::pair{live_dir / "cell_map.h5", from_h5},
                                  std::pair{live_dir / "cell_map.csv", from_csv}}) {
    INFO(file);
    const auto outcome = map_file(file, out);
    CHECK(classes_of(out) == live.classes);
    CHECK(outcome.result["classes"] == live.outcome.result["classes"]);
    CHECK(outcome.result["counters"] == true);  // the file's FORM counters
    CHECK(outcome.record.chip_id == kChip);     // the chip the file names
    // The source instead of a board.
    const auto record = common::read_json_file(out / bench::kRecordFile);
    CHECK(record["status"] == "completed");
    CHECK(!record.contains("board"));
    CHECK(record["source"]["path"] == fs::absolute(file).lexically_normal().string());
    CHECK(record["source"]["sha256"] == util::sha256_file_hex(file));
    std::ifstream csv(out / "cell_map.csv");
    std::string line;
    std::getline(csv, line);
    CHECK(line.rfind("# source: " + fs::absolute(file).lexically_normal().string(), 0) == 0);
    test::check_png(out / "cell_map.png");
    fs::remove_all(out);
  }
  fs::remove_all(live_dir);
}

TEST_CASE(
    "a cell map from `board read` CSV and from a training snapshot has the live map's "
    "classes (no counters)",
    "[measure][cell-map][from]") {
  const MapChip chip;
  // The same chip read twice in process gives the same reads (same seed, same requests).
  bench::CellMapOptions no_counters;
  no_counters.counters = false;
  const fs::path live_dir = scratch("live-nc"), read_csv = scratch("board-read.csv"),
                 snapshot = scratch("epoch_0001.h5"), out = scratch("from-read");
  const auto live = live_map(chip.device, live_dir, no_counters);
  run_cli({"board", "read", "--device", chip.device, "--out", read_csv.string()});
  {
    const auto outcome = map_file(read_csv, out, kChip);
    CHECK(classes_of(out) == live.classes);
    CHECK(outcome.result["counters"] == false);
    CHECK(outcome.result["classes"]["unformable"] == 0);
    CHECK(outcome.record.source["kind"] == "board read CSV");
    fs::remove_all(out);
  }
  // A training run whose network covered the whole array: every cell has a weight and a read.
  hil::ArraySnapshot s;
  s.rows = s.cols = 128;
  s.conductance_us.assign(live.conductance_us.begin(), live.conductance_us.end());
  s.target_conductance_us.assign(16384, 3.0f);
  s.target_level.assign(16384, 0);
  s.layer.assign(16384, 0);
  s.programming_count.assign(16384, 0);
  s.chip_id = kChip;
  s.run_id = "run";
  hil::write_snapshot_h5(snapshot, s);
  {
    const auto outcome = map_file(snapshot, out);
    CHECK(classes_of(out) == live.classes);
    CHECK(outcome.record.chip_id == kChip);
    CHECK(outcome.record.source["kind"] == "training snapshot");
    fs::remove_all(out);
  }
  // The snapshot a real run writes holds the placed cells only: a partial read.
  for (std::size_t i = 100; i < 16384; ++i) {
    s.conductance_us[i] = std::nanf("");
    s.layer[i] = -1;
  }
  s.conductance_us[7] = std::nanf("");  // a placed cell without a read
  hil::write_snapshot_h5(snapshot, s);
  CHECK_THAT(from_error(snapshot),
             Catch::Contains("partial read") && Catch::Contains("100 cells holding weights") &&
                 Catch::Contains("16284 of 16384") && Catch::Contains("row 0, col 100") &&
                 Catch::Contains("metaplast board read"));
  for (std::size_t i = 100; i < 16384; ++i) s.layer[i] = 0;
  hil::write_snapshot_h5(snapshot, s);
  CHECK_THAT(from_error(snapshot),
             Catch::Contains("16285 cell(s) read NaN") && Catch::Contains("first: row 0, col 7"));
  for (const auto& p : {live_dir, read_csv, snapshot}) fs::remove_all(p);
}

TEST_CASE("the chip registry's bad cells are \"bad\" in live and saved maps",
          "[measure][cell-map][from]") {
  const MapChip chip;
  const fs::path chips = scratch("chips"), live_dir = scratch("live-bad"),
                 out = scratch("from-bad");
  fs::remove_all(chips);
  // A formed cell, an unformable one and a stuck one, as the live map sees them.
  const auto plain = live_map(chip.device, live_dir);
  fs::remove_all(live_dir);
  const auto first = [&plain](CellClass c) {
    const auto at = std::find(plain.classes.begin(), plain.classes.end(), c);
    REQUIRE(at != plain.classes.end());
    return static_cast<std::uint32_t>(at - plain.classes.begin());
  };
  const std::uint32_t formed = first(CellClass::formed), unformable = first(CellClass::unformable),
                      stuck = first(CellClass::stuck);
  hil::ChipRegistry(chips).update(kChip, 128, 128, [&](hil::ChipRecord& r) {
    r.mark_bad(formed, "failed_band", "12 pulses, 40.1 uS", "2026-12-01T10:00:00Z");
    r.mark_bad(unformable, "unformable", "", "2026-12-01T10:00:00Z");
    r.mark_bad(stuck, "stuck_hcs", "", "2026-12-01T10:00:00Z");
  });
  bench::CellMapOptions o;
  o.chips_dir = chips.string();
  const auto live = live_map(chip.device, live_dir, o);
  CHECK(live.classes[formed] == CellClass::bad);
  CHECK(live.classes[unformable] == CellClass::bad);
  CHECK(live.classes[stuck] == CellClass::stuck);  // stuck over bad
  CHECK(live.outcome.result["classes"]["bad"] == 2);
  CHECK(live.outcome.result["bad_cells"].size() == 2);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < live.classes.size(); ++i)
    changed += live.classes[i] != plain.classes[i];
  CHECK(changed == 2);
  // The reason in the CSV.
  const std::string csv = test::read_file(live_dir / "cell_map.csv");
  const auto row_col = [](std::uint32_t i) {
    return std::to_string(i / 128) + "," + std::to_string(i % 128) + ",";
  };
  const auto line_of = [&](std::uint32_t i) {
    const auto at = csv.find("\n" + row_col(i));
    REQUIRE(at != std::string::npos);
    return csv.substr(at + 1, csv.find('\n', at + 1) - at - 1);
  };
  CHECK_THAT(line_of(formed), Catch::Contains(",bad,\"chip registry: failed_band (12 pulses"));
  CHECK_THAT(line_of(stuck),
             Catch::Contains(",stuck,") && Catch::Contains("chip registry: stuck_hcs"));
  test::check_png(live_dir / "cell_map.png");
  // The same from the saved map, with the chip the file names and with --chip.
  for (const std::string& given : {std::string(), kChip}) {
    map_file(live_dir / "cell_map.h5", out, given, chips);
    CHECK(classes_of(out) == live.classes);
    fs::remove_all(out);
  }
  // Without --chips-dir, the station's chips_dir (as characterize takes it).
  const fs::path station = scratch("station.json"), station_map = scratch("station-map");
  std::ofstream(station) << nlohmann::json{{"station", "bench-t"}, {"chips_dir", chips.string()}};
  run_cli({"measure", "cell-map", "--device", chip.device, "--station", station.string(), "--chip",
           kChip, "--out", station_map.string()});
  CHECK(classes_of(station_map) == live.classes);
  fs::remove_all(station_map);
  fs::remove(station);
  // A record of another geometry is refused.
  hil::ChipRegistry(chips).update("small", 64, 64, [](hil::ChipRecord&) {});
  CHECK_THROWS_WITH(map_file(live_dir / "cell_map.h5", out, "small", chips),
                    Catch::Contains("chip small is 64 x 64, the array read is 128 x 128"));
  for (const auto& p : {chips, live_dir, out}) fs::remove_all(p);
}

TEST_CASE("cell-map --from refuses what is not a whole saved read, saying why",
          "[measure][cell-map][from]") {
  const fs::path file = scratch("bad-input.csv");
  const auto write = [&](const std::string& text) { std::ofstream(file) << text; };
  CHECK_THAT(from_error(scratch("nowhere.csv")), Catch::Contains("--from ") &&
                                                     Catch::Contains("nowhere.csv: no such file") &&
                                                     Catch::Contains("metaplast board read"));
  write("{\"kind\": \"metaplast.chip\"}\n");
  CHECK_THAT(from_error(file), Catch::Contains("line 1") &&
                                   Catch::Contains("is not a conductance") &&
                                   Catch::Contains("cell-map --from takes"));
  write("# a comment\nx,y\n1,2\n");
  CHECK_THAT(from_error(file), Catch::Contains("columns are not row,col,conductance_us"));
  // `board read` matrices: a short row, a NaN.
  write("0.1,0.2,0.3\n0.1,0.2\n");
  CHECK_THAT(from_error(file), Catch::Contains("partial read: line 2 has 2 values, line 1 has 3"));
  write("0.1,0.2,0.3\n0.1,0.2,0.3\n");
  CHECK_THAT(from_error(file), Catch::Contains("partial read: 2 lines of 3 values, not the whole "
                                               "128 x 128 array"));
  std::string matrix;
  for (int row = 0; row < 128; ++row) {
    for (int col = 0; col < 128; ++col) {
      if (col) matrix += ',';
      matrix += row == 1 && col == 1 ? "nan" : "0.5";
    }
    matrix += "\n";
  }
  write(matrix);
  CHECK_THAT(from_error(file), Catch::Contains("1 cell(s) read NaN") &&
                                   Catch::Contains("first: row 1, col 1, line 2"));
  // Cell lists: a cell missing of the array the header names, a NaN.
  write(
      "# board: m S (firmware 1, protocol 1, boot 0, 2 x 2)\nrow,col,conductance_us\n"
      "0,0,1\n0,1,1\n1,1,1\n");
  CHECK_THAT(from_error(file), Catch::Contains("partial read: 3 of 4 cells listed") &&
                                   Catch::Contains("first missing: row 1, col 0"));
  write("row,col,conductance_us\n0,0,1\n0,1,nan\n");
  CHECK_THAT(from_error(file), Catch::Contains("line 3: row 0, col 1 reads NaN"));
  write("#\nrow,col,conductance_us\n0,0,1\n0,1,1\n");  // no geometry line: the whole array
  CHECK_THAT(from_error(file), Catch::Contains("partial read: 2 of 16384 cells listed"));
  write(
      "# board: m S (firmware 1, protocol 1, boot 0, 1 x 2)\n#\nrow,col,conductance_us\n"
      "0,0,1\n0,1,1\n");
  CHECK(from_error(file) == "(no error)");
  // An HDF5 file of another measurement.
  const fs::path forming = scratch("forming.h5");
  {
    util::H5File h5(forming);
    h5.string_attribute("/", "format", "metaplast measurement 1 (docs/bench.md, Measurements)");
    h5.string_attribute("/", "kind", "forming");
    h5.commit();
  }
  CHECK_THAT(from_error(forming), Catch::Contains("a forming measurement's HDF5 file") &&
                                      Catch::Contains("cell_map.h5"));
  fs::remove(forming);
  fs::remove(file);
}

TEST_CASE("metaplast measure cell-map --from and a campaign step with \"from\"",
          "[measure][cell-map][from][campaign]") {
  const MapChip chip;
  const fs::path live_dir = scratch("cli-live"), out = scratch("cli-from");
  run_cli({"measure", "cell-map", "--device", chip.device, "--chip", kChip, "--out",
           live_dir.string()});
  run_cli({"measure", "cell-map", "--from", (live_dir / "cell_map.h5").string(), "--chips-dir",
           scratch("no-chips").string(), "--out", out.string()});
  const auto live = common::read_json_file(live_dir / bench::kRecordFile);
  const auto saved = common::read_json_file(out / bench::kRecordFile);
  CHECK(saved["result"]["classes"] == live["result"]["classes"]);
  CHECK_THROWS(run_cli({"measure", "cell-map", "--from", "x.csv", "--device", chip.device, "--out",
                        scratch("never").string()}));
  CHECK_THROWS_WITH(run_cli({"measure", "cell-map", "--from", "x.csv", "--read-voltage", "0.2",
                             "--out", scratch("never").string()}),
                    Catch::Contains("no board settings (read_voltage_v given)"));
  fs::remove_all(out);

  // The campaign's "from" is relative to the campaign file.
  const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast";
  const fs::path folder = scratch("camp"), run = scratch("camp-run"), log = scratch("camp.log");
  fs::create_directories(folder);
  fs::copy_file(live_dir / "cell_map.csv", folder / "saved.csv",
                fs::copy_options::overwrite_existing);
  std::ofstream(folder / "campaign.json") << R"({"campaign": "maps", "steps": [
      {"id": "map", "type": "cell-map", "from": "saved.csv"}]})";
  const int rc = test::run({binary, "campaign", "run", (folder / "campaign.json").string(), "--out",
                            run.string(), "--quiet"},
                           log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const auto step = common::read_json_file(run / "steps" / "map" / bench::kRecordFile);
  CHECK(step["status"] == "completed");
  CHECK(step["result"]["classes"] == live["result"]["classes"]);
  CHECK(step["source"]["path"] == (folder / "saved.csv").lexically_normal().string());
  test::check_png(run / "steps" / "map" / "cell_map.png");
  // A malformed "from" names its JSON path.
  CHECK_THAT(test::campaign_error(R"({"campaign": "c", "steps": [
      {"id": "m", "type": "cell-map", "from": 3}]})"),
             Catch::Contains("camp.json: /steps/0/from"));
  for (const auto& p : {live_dir, folder, run, log}) fs::remove_all(p);
}
