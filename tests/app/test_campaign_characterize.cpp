// A campaign's characterize step keeps the chip record as `metaplast characterize` does: the
// cells it pulsed, their writes and a "characterize" session naming the calibration it wrote;
// and it writes the same files (app/hil/characterization_steps.hpp).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "app/hil/chip_registry.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace metaplast;

namespace {

using metaplast::test::read_file;

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-camp-char", name);
}

std::set<std::string> file_names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

}  // namespace

TEST_CASE("a campaign characterize step updates the chip record", "[campaign][characterize]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path chips = scratch("chips"), campaign = scratch("campaign.json"),
                 dir = scratch("run"), log = scratch("run.log");
  std::ofstream(campaign) << json({{"campaign", "char-record"},
                                   {"steps",
                                    {{{"id", "char"},
                                      {"type", "characterize"},
                                      {"device", "sim:?seed=4&formed=1"},
                                      {"chip", "W1-D2"},
                                      {"cells", 40},
                                      {"cycles", 3},
                                      {"read_repeats", 2},
                                      {"read_cells", 10},
                                      {"chips_dir", chips.string()}}}}})
                                 .dump();
  const int rc = metaplast::test::run(
      {kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--quiet"}, log);
  INFO(read_file(log));
  REQUIRE(rc == 0);

  const hil::ChipRegistry registry(chips);
  const auto record = registry.load("W1-D2");
  REQUIRE(record.has_value());
  REQUIRE(record->sessions.size() == 1);
  CHECK(record->sessions[0].kind == "characterize");
  CHECK(record->sessions[0].cells == 40);
  CHECK(record->sessions[0].writes > 0);
  CHECK_THAT(record->sessions[0].note, Catch::Contains("calibration.json"));
  CHECK(record->formed_cells.size() >= 40);
  for (const auto& p : {chips, campaign, dir, log}) fs::remove_all(p);
}

TEST_CASE("a campaign characterize step writes the files metaplast characterize writes",
          "[campaign][characterize]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path campaign = scratch("files.json"), run_dir = scratch("files-run"),
                 cli_dir = scratch("files-cli"), log = scratch("files.log");
  const std::string device = "sim:?seed=5&formed=1";
  std::ofstream(campaign) << json({{"campaign", "char-files"},
                                   {"steps",
                                    {{{"id", "char"},
                                      {"type", "characterize"},
                                      {"device", device},
                                      {"chip", "W1-D3"},
                                      {"cells", 40},
                                      {"cycles", 3},
                                      {"read-repeats", 0}}}}})
                                 .dump();
  int rc = metaplast::test::run(
      {kBinary, "campaign", "run", campaign.string(), "--out", run_dir.string(), "--quiet"}, log);
  INFO(read_file(log));
  REQUIRE(rc == 0);
  rc = metaplast::test::run(
      {kBinary, "characterize", "--device", device, "--chip", "W1-D3", "--cells", "40", "--cycles",
       "3", "--read-repeats", "0", "--no-registry", "--out", cli_dir.string()},
      log);
  INFO(read_file(log));
  REQUIRE(rc == 0);

  const fs::path step_dir = run_dir / "steps" / "char";
  CHECK(file_names(step_dir) == file_names(cli_dir));
  // The same board and options: the same cells read as unformed (this seed has some) and the
  // same bad cells.
  CHECK(read_file(step_dir / "unformed.csv") != "row,col\n");
  for (const char* name : {"unformed.csv", "bad_cells.csv", "samples.csv"}) {
    INFO(name);
    CHECK(read_file(step_dir / name) == read_file(cli_dir / name));
  }
  for (const auto& p : {campaign, run_dir, cli_dir, log}) fs::remove_all(p);
}
