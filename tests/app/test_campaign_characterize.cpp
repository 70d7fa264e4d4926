// A campaign's characterize step keeps the chip record as `metaplast characterize` does: the
// cells it pulsed, their writes and a "characterize" session naming the calibration it wrote.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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
