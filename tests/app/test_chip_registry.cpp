// Chip identity: the per-chip record survives sessions (formed cells, bad cells, cumulative
// writes), is replaced atomically, and a calibration of another chip is refused.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "app/hil/chip_registry.hpp"

namespace hil = metaplast::hil;
namespace devices = metaplast::devices;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("metaplast-chips-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

}  // namespace

TEST_CASE("a chip record accumulates across sessions and round-trips through its file") {
  TempDir dir;
  hil::ChipRegistry registry(dir.path / "chips");
  CHECK_FALSE(registry.load("W7-D03").has_value());

  registry.update("W7-D03", 128, 128, [](hil::ChipRecord& r) {
    r.formed_cells.insert({0, 1, 2, 300});
    r.add_writes(r.index(0, 1), 18);
    r.add_writes(r.index(2, 44), 36);
    r.mark_bad(r.index(1, 5), "stuck_lcs", "does not SET", "2025-01-01T00:00:00Z");
    r.sessions.push_back({"2025-01-01T00:00:00Z", "characterize", "sim", "SIM-0001", 2, 54, ""});
  });
  registry.update("W7-D03", 128, 128, [](hil::ChipRecord& r) {
    r.formed_cells.insert(5);
    r.add_writes(r.index(0, 1), 2);
    // A cell found bad again keeps its first record.
    r.mark_bad(r.index(1, 5), "outlier", "later", "2025-02-01T00:00:00Z");
    r.sessions.push_back({"2025-02-01T00:00:00Z", "train", "sim", "SIM-0001", 1, 2, ""});
  });

  const auto r = registry.load("W7-D03");
  REQUIRE(r.has_value());
  CHECK(r->chip_id == "W7-D03");
  CHECK(r->rows == 128);
  CHECK(r->formed_cells == std::set<std::uint32_t>{0, 1, 2, 5, 300});
  CHECK(r->writes_per_cell.size() == 128 * 128);
  CHECK(r->writes_per_cell[1] == 20);
  CHECK(r->writes_per_cell[2 * 128 + 44] == 36);
  CHECK(r->total_writes == 56);
  REQUIRE(r->bad_cells.size() == 1);
  CHECK(r->bad_cells.at(133).reason == "stuck_lcs");
  CHECK(r->is_bad(133));
  REQUIRE(r->sessions.size() == 2);
  CHECK(r->sessions[1].kind == "train");
  CHECK_FALSE(r->created.empty());

  // The file is replaced, never left half-written: only the record and its lock file remain.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "chips")) {
    ++files;
    const auto name = e.path().filename().string();
    CHECK((name == "W7-D03.json" || name == "W7-D03.json.lock"));
  }
  CHECK(files == 2);

  // Text round trip is exact.
  const auto again = hil::chip_record_from_json(hil::chip_record_to_json(*r), "<text>");
  CHECK(hil::chip_record_to_json(again) == hil::chip_record_to_json(*r));
}

TEST_CASE("a record with another geometry or a malformed file is refused with its path") {
  TempDir dir;
  hil::ChipRegistry registry(dir.path);
  registry.update("C1", 128, 128, [](hil::ChipRecord&) {});
  CHECK_THROWS_WITH(registry.update("C1", 64, 64, [](hil::ChipRecord&) {}),
                    Catch::Contains("recorded as 128 x 128") && Catch::Contains("64 x 64"));

  {
    std::ofstream(dir.path / "C2.json") << R"({"schema_version": 1, "chip_id": "C2",
      "geometry": {"rows": 4, "cols": 4}, "formed_cells": [3, 99]})";
  }
  CHECK_THROWS_WITH(registry.load("C2"),
                    Catch::Contains("C2.json") && Catch::Contains("/formed_cells/1"));
  { std::ofstream(dir.path / "C3.json") << R"({"schema_version": 2, "chip_id": "C3"})"; }
  CHECK_THROWS_WITH(registry.load("C3"), Catch::Contains("/schema_version"));
}

TEST_CASE("a calibration of another chip is refused, naming both chips") {
  auto calibration = metaplast::devices::Calibration::defaults();
  calibration.identity.chip_id = "W7-D03";
  calibration.identity.board_serial = "B-12";
  CHECK_NOTHROW(hil::require_same_chip(calibration, "W7-D03"));
  try {
    hil::require_same_chip(calibration, "W7-D04", "run/calibration.json");
    FAIL("a calibration of W7-D03 was accepted for W7-D04");
  } catch (const hil::ChipMismatchError& e) {
    const std::string m = e.what();
    CHECK_THAT(m, Catch::Contains("run/calibration.json"));
    CHECK_THAT(m, Catch::Contains("'W7-D03'"));
    CHECK_THAT(m, Catch::Contains("'W7-D04'"));
    CHECK_THAT(m, Catch::Contains("B-12"));
    CHECK_THAT(m, Catch::Contains("metaplast characterize --chip W7-D04"));
  }
}

TEST_CASE("chip ids become file names: validated, derived from the board serial") {
  CHECK_NOTHROW(hil::validate_chip_id("W7-D03_rev.b"));
  CHECK_THROWS_WITH(hil::validate_chip_id("../etc/passwd"), Catch::Contains("not valid"));
  CHECK_THROWS_AS(hil::validate_chip_id(""), std::invalid_argument);
  CHECK_THROWS_AS(hil::validate_chip_id(".hidden"), std::invalid_argument);
  CHECK_THROWS_AS(hil::validate_chip_id(std::string(65, 'a')), std::invalid_argument);
  CHECK(hil::chip_id_from_board_serial("SIM-0001") == "board-SIM-0001");
  CHECK(hil::chip_id_from_board_serial("AB 12/x") == "board-AB_12_x");
  hil::validate_chip_id(hil::chip_id_from_board_serial("AB 12/x"));
}

TEST_CASE("the chips directory comes from $METAPLAST_CHIPS, else the repository") {
  const char* old = std::getenv("METAPLAST_CHIPS");
  const std::string saved = old ? old : "";
  ::setenv("METAPLAST_CHIPS", "/tmp/some-chips", 1);
  CHECK(hil::ChipRegistry::default_directory() == fs::path("/tmp/some-chips"));
  ::unsetenv("METAPLAST_CHIPS");
  CHECK(hil::ChipRegistry::default_directory().filename() == "chips");
  if (old) ::setenv("METAPLAST_CHIPS", saved.c_str(), 1);
}

TEST_CASE("a run keeps its chips in --chips-dir, none for the simulated board, else the default") {
  CHECK(hil::ChipRegistry::for_run("/tmp/lab-chips", false) == fs::path("/tmp/lab-chips"));
  CHECK(hil::ChipRegistry::for_run("/tmp/lab-chips", true) == fs::path("/tmp/lab-chips"));
  CHECK(hil::ChipRegistry::for_run("", true).empty());
  CHECK(hil::ChipRegistry::for_run("", false) == hil::ChipRegistry::default_directory());
}
