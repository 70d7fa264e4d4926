#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "devices/calibration.hpp"

using namespace metaplast::devices;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("metaplast_sim_" + std::to_string(::getpid()) + "_" + name);
}

std::string error_of(const std::string& json_text) {
  try {
    calibration_from_json(json_text, "cal.json");
  } catch (const CalibrationError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("default calibration follows the board table", "[calibration]") {
  const Calibration c = Calibration::defaults();
  REQUIRE(c.hcs_levels.size() == 8);
  CHECK(c.hcs_levels.front().icc_ua == Approx(10.0));
  CHECK(c.hcs_levels.back().icc_ua == Approx(80.0));
  CHECK(c.hcs_levels.front().median_conductance_us == Approx(20.0));
  CHECK(c.hcs_levels.back().median_conductance_us == Approx(160.0));
  // sigma_G = 4.78 - 0.0091 G: about 4.3 uS at 50 uS.
  CHECK(default_c2c_sigma_us(50.0) == Approx(4.325));
  const auto medians = c.level_medians_us();
  REQUIRE(medians.size() == 9);
  CHECK(medians[0] == Approx(c.lcs.median_conductance_us));
  CHECK_NOTHROW(c.validate());
}

TEST_CASE("calibration survives a file round trip exactly", "[calibration]") {
  Calibration c = Calibration::defaults();
  c.identity.chip_id = "DIE-42";
  c.identity.source = "characterization";
  c.hcs_levels[3].median_conductance_us = 81.234567890123;
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  const auto path = temp_path("roundtrip.json");
  save_calibration(c, path);
  const Calibration back = load_calibration(path);
  std::filesystem::remove(path);
  CHECK(calibration_to_json(back) == calibration_to_json(c));
  CHECK(back.identity.chip_id == "DIE-42");
  CHECK(back.hcs_levels[3].median_conductance_us == c.hcs_levels[3].median_conductance_us);
  CHECK_FALSE(back.relaxation.enabled);
}

TEST_CASE("calibration errors name the file, the JSON path and what was expected",
          "[calibration]") {
  auto j = nlohmann::json::parse(calibration_to_json(Calibration::defaults()));

  auto bad_type = j;
  bad_type["hcs_levels"][2]["median_conductance_us"] = "sixty";
  const std::string type_error = error_of(bad_type.dump());
  CHECK_THAT(type_error, Catch::Contains("cal.json"));
  CHECK_THAT(type_error, Catch::Contains("/hcs_levels/2/median_conductance_us"));
  CHECK_THAT(type_error, Catch::Contains("a number"));

  auto missing = j;
  missing["lcs"].erase("median_conductance_us");
  CHECK_THAT(error_of(missing.dump()), Catch::Contains("/lcs/median_conductance_us"));

  auto version = j;
  version["schema_version"] = 99;
  CHECK_THAT(error_of(version.dump()), Catch::Contains("/schema_version"));

  auto not_monotone = j;
  not_monotone["hcs_levels"][4]["median_conductance_us"] = 10.0;
  CHECK_THAT(error_of(not_monotone.dump()), Catch::Contains("/hcs_levels/4"));

  CHECK_THAT(error_of("{ not json"), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(load_calibration(temp_path("does_not_exist.json")),
                    Catch::Contains("does_not_exist.json"));
}

TEST_CASE("optional sections take defaults, c2c sigma follows the default law", "[calibration]") {
  const std::string minimal = R"({
    "schema_version": 1,
    "hcs_levels": [
      {"icc_ua": 20, "gate_voltage_v": 0.9, "median_conductance_us": 40},
      {"icc_ua": 40, "gate_voltage_v": 1.1, "median_conductance_us": 80}
    ],
    "lcs": {"median_conductance_us": 2.5, "c2c_sigma_ln": 0.4}
  })";
  const Calibration c = calibration_from_json(minimal, "minimal.json");
  REQUIRE(c.hcs_levels.size() == 2);
  CHECK(c.hcs_levels[1].c2c_sigma_us == Approx(default_c2c_sigma_us(80.0)));
  CHECK(c.lcs.median_conductance_us == Approx(2.5));
  CHECK(c.endurance.median_cycles == Approx(EnduranceModel{}.median_cycles));
}
