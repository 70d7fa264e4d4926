// The calibration from measurements (docs/calibration.md, "Calibration from measurements"):
// `metaplast calibrate` writes the fields the measurements determined over the base, keeps and
// lists the rest, refuses sources of another chip, unfinished measurements and fields that are
// not the schema's, and checks the result against the schema's ranges.
#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/bench/calibration_from_measurements.hpp"
#include "app/bench/measurement.hpp"
#include "app/bench/read_disturb.hpp"
#include "app/campaign/campaign.hpp"
#include "app/cli/commands.hpp"
#include "common/atomic_file.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path scratch(const std::string& name) {
  return test::scratch_path("metaplast-calibrate", name);
}

// A measurement folder as `metaplast measure` leaves it: measurement.json with the result's
// calibration fields (the input fit_calibration reads; the measurements themselves are tested in
// test_measure*).
fs::path measurement_folder(const std::string& name, const std::string& kind,
                            const std::string& chip, const json& fields,
                            const std::string& status = "completed") {
  const fs::path dir = scratch(name);
  fs::create_directories(dir);
  const json record = {{"kind", kind},
                       {"chip_id", chip},
                       {"board", {{"model", "metaplast-simboard"}, {"serial", "SIM-0001-s3"}}},
                       {"started", "2026-12-06T09:00:00.000Z"},
                       {"finished", "2026-12-06T09:10:00.000Z"},
                       {"status", status},
                       {"result", {{"calibration", fields}}}};
  common::write_file_atomically(dir / bench::kRecordFile, record.dump(2));
  return dir;
}

json field(double value, double se, bool identifiable = true) {
  return {
      {"value", value}, {"standard_error", se}, {"identifiable", identifiable}, {"note", "test"}};
}

std::string campaign_error(const std::string& steps) {
  try {
    campaign::parse_campaign(json::parse(R"({"campaign": "c", "steps": [)" + steps + "]}"),
                             "camp.json");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A simulated chip with a known read disturb (`truth`: 1e-4 per read above 0.15 V, relaxation off)
// and the base a user starts from: the truth's onset and slope (read disturb at one voltage
// determines only the amplitude), every other field the built-in model. Returns the base.
devices::Calibration write_disturb_models(const fs::path& truth_file, const fs::path& base_file) {
  devices::Calibration truth = devices::Calibration::defaults();
  truth.relaxation.enabled = false;
  truth.read_disturb.onset_voltage_v = 0.15;
  truth.read_disturb.slope_v = 0.05;
  truth.read_disturb.rel_per_read = 1e-4;
  truth.yield.defect_fraction = 0.0;
  devices::save_calibration(truth, truth_file);
  devices::Calibration base = devices::Calibration::defaults();
  base.read_disturb.onset_voltage_v = 0.15;
  base.read_disturb.slope_v = 0.05;
  devices::save_calibration(base, base_file);
  return base;
}

int run_cli(std::vector<std::string> args) {
  CLI::App root;
  cli::add_calibrate_command(root);
  std::vector<const char*> argv = {"metaplast"};
  for (const auto& a : args) argv.push_back(a.c_str());
  root.parse(static_cast<int>(argv.size()), argv.data());
  return 0;
}

}  // namespace

TEST_CASE("a read-disturb measurement's fit lands in the calibration, the rest is kept and listed",
          "[calibrate]") {
  // The measurement, for real, on the simulated board with a known disturb.
  const fs::path truth_file = scratch("truth.json"), base_file = scratch("base.json");
  const devices::Calibration base = write_disturb_models(truth_file, base_file);

  const fs::path run = scratch("disturb");
  bench::ReadDisturbOptions o;
  o.programming.cells = 48;
  o.programming.levels = {1, 4};
  o.reads = 300;
  o.points = 10;
  bench::ReadDisturbMeasurement m(o, base.read_disturb);
  bench::HarnessOptions h;
  h.session.device = "sim:?seed=3&formed=1&calibration=" + truth_file.string();
  h.session.settings = {{"read_voltage_v", {0.25}}};
  h.out = run;
  h.log = [](const std::string&) {};
  h.progress_line = false;
  const auto outcome = bench::run_measurement(m, h);
  REQUIRE(outcome.status == bench::MeasurementStatus::completed);

  const fs::path out = scratch("fitted.json");
  run_cli(
      {"calibrate", "--base", base_file.string(), "--from", run.string(), "--out", out.string()});
  const devices::Calibration fitted = devices::load_calibration(out);
  // Tolerance: rel_per_read within 5 % (as the measurement's own round trip).
  CHECK(fitted.read_disturb.rel_per_read == Approx(1e-4).epsilon(0.05));
  CHECK(fitted.read_disturb.onset_voltage_v == 0.15);
  CHECK(fitted.relaxation.drift_per_decade_rel == base.relaxation.drift_per_decade_rel);
  CHECK(fitted.identity.chip_id == outcome.record.chip_id);
  CHECK(fitted.identity.source == "measurements");

  const json doc = common::read_json_file(out);
  const json& section = doc.at("measurements");
  CHECK(section.at("base") == base_file.string());
  REQUIRE(section.at("fields").contains("/read_disturb/rel_per_read"));
  CHECK(section["fields"]["/read_disturb/rel_per_read"]["source"] == "read-disturb");
  CHECK(section["fields"]["/read_disturb/rel_per_read"]["from"] == run.string());
  CHECK(section.at("fields").size() == 1);
  const auto& not_measured = section.at("not_measured");
  auto listed = [&](const std::string& p) {
    return std::find(not_measured.begin(), not_measured.end(), p) != not_measured.end();
  };
  CHECK(listed("/relaxation/drift_per_decade_rel"));
  CHECK(listed("/forming/median_voltage_v"));
  CHECK(listed("/hcs_levels"));
  CHECK_FALSE(listed("/read_disturb/rel_per_read"));
  CHECK(section.at("sources").size() == 1);
  CHECK(section["sources"][0]["board_settings"]["read_voltage_v"] == 0.25);
  for (const auto& p : {truth_file, base_file, out}) fs::remove(p);
  fs::remove_all(run);
}

TEST_CASE("fields the data do not determine keep the base's value and say so", "[calibrate]") {
  const fs::path ret =
      measurement_folder("ret", "retention", "CHIP-A",
                         {{"/relaxation/drift_per_decade_rel", field(0.01, 0.001)},
                          {"/relaxation/step_time_constant_s", field(250.0, 600.0, false)}});
  bench::CalibrationFitOptions options;
  options.measurements = {ret};
  auto fitted = bench::fit_calibration(options);
  const auto defaults = devices::Calibration::defaults();
  auto c = devices::calibration_from_json(fitted.calibration.dump(), "fitted");
  CHECK(c.relaxation.drift_per_decade_rel == 0.01);
  CHECK(c.relaxation.step_time_constant_s == defaults.relaxation.step_time_constant_s);
  CHECK(c.identity.chip_id == "CHIP-A");
  REQUIRE(fitted.not_applied.size() == 1);
  CHECK(fitted.not_applied[0].pointer == "/relaxation/step_time_constant_s");
  CHECK(fitted.calibration["measurements"]["not_identifiable_kept_from_base"].contains(
      "/relaxation/step_time_constant_s"));
  CHECK(bench::fitted_calibration_table(fitted).find("(not identifiable)") != std::string::npos);

  options.include_unidentifiable = true;
  fitted = bench::fit_calibration(options);
  c = devices::calibration_from_json(fitted.calibration.dump(), "fitted");
  CHECK(c.relaxation.step_time_constant_s == 250.0);
  fs::remove_all(ret);
}

TEST_CASE("a later measurement of the same field overrides an earlier one, and is listed",
          "[calibrate]") {
  const fs::path a = measurement_folder("a", "retention", "CHIP-A",
                                        {{"/relaxation/drift_per_decade_rel", field(0.01, 0.001)}});
  const fs::path b = measurement_folder("b", "retention", "CHIP-A",
                                        {{"/relaxation/drift_per_decade_rel", field(0.02, 0.001)}});
  bench::CalibrationFitOptions options;
  options.measurements = {a, b};
  const auto fitted = bench::fit_calibration(options);
  CHECK(fitted.calibration["relaxation"]["drift_per_decade_rel"] == 0.02);
  REQUIRE(fitted.overridden.size() == 1);
  CHECK(fitted.overridden[0].source == a);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST_CASE("calibrate refuses what would describe no chip or a wrong one", "[calibrate]") {
  const fs::path a = measurement_folder("chip-a", "retention", "CHIP-A",
                                        {{"/relaxation/drift_per_decade_rel", field(0.01, 0.001)}});
  bench::CalibrationFitOptions options;

  SECTION("sources of two chips") {
    const fs::path b = measurement_folder("chip-b", "read-disturb", "CHIP-B",
                                          {{"/read_disturb/rel_per_read", field(1e-6, 1e-8)}});
    options.measurements = {a, b};
    CHECK_THROWS_WITH(bench::fit_calibration(options),
                      Catch::Contains("chip CHIP-B") && Catch::Contains("chip CHIP-A"));
    fs::remove_all(b);
  }
  SECTION("a base characterisation of another chip") {
    json base = json::parse(devices::calibration_to_json(devices::Calibration::defaults()));
    base["identity"]["chip_id"] = "CHIP-Z";
    base["characterization"] = {{"not_measured_copied_from_base", {"relaxation"}}};
    const fs::path base_file = scratch("base-z.json");
    common::write_file_atomically(base_file, base.dump(2));
    options.base = base_file;
    options.measurements = {a};
    CHECK_THROWS_WITH(bench::fit_calibration(options), Catch::Contains("CHIP-Z"));
    fs::remove(base_file);
  }
  SECTION("an interrupted measurement") {
    const fs::path c =
        measurement_folder("stopped", "retention", "CHIP-A",
                           {{"/relaxation/drift_per_decade_rel", field(0.01, 0.1)}}, "interrupted");
    options.measurements = {c};
    CHECK_THROWS_WITH(bench::fit_calibration(options),
                      Catch::Contains("interrupted") && Catch::Contains("--resume"));
    fs::remove_all(c);
  }
  SECTION("a folder that holds no measurement") {
    const fs::path empty = scratch("empty");
    fs::create_directories(empty);
    options.measurements = {empty};
    CHECK_THROWS_WITH(bench::fit_calibration(options), Catch::Contains("no measurement.json"));
    common::write_file_atomically(empty / "calibration.json", "{}");
    CHECK_THROWS_WITH(bench::fit_calibration(options),
                      Catch::Contains("is a characterisation") && Catch::Contains("--base"));
    fs::remove_all(empty);
  }
  SECTION("a field that is not the schema's") {
    const fs::path c = measurement_folder("unknown", "retention", "CHIP-A",
                                          {{"/relaxation/drift_per_decad", field(0.01, 0.1)}});
    options.measurements = {c};
    CHECK_THROWS_WITH(bench::fit_calibration(options),
                      Catch::Contains("/result/calibration//relaxation/drift_per_decad") &&
                          Catch::Contains("not a field"));
    fs::remove_all(c);
  }
  SECTION("a fitted value outside the schema's range") {
    const fs::path c = measurement_folder("range", "read-disturb", "CHIP-A",
                                          {{"/read_disturb/rel_per_read", field(0.5, 0.1)}});
    options.measurements = {c};
    CHECK_THROWS_WITH(bench::fit_calibration(options), Catch::Contains("rel_per_read"));
    fs::remove_all(c);
  }
  fs::remove_all(a);
}

TEST_CASE("a characterisation as the base counts its measured groups as measured", "[calibrate]") {
  json base = json::parse(devices::calibration_to_json(devices::Calibration::defaults()));
  base["identity"]["chip_id"] = "CHIP-A";
  base["characterization"] = {
      {"not_measured_copied_from_base",
       {"relaxation", "endurance", "yield", "pristine", "forming", "switching", "read_disturb"}}};
  const fs::path base_file = scratch("char.json");
  common::write_file_atomically(base_file, base.dump(2));
  const fs::path a = measurement_folder("ret-char", "retention", "CHIP-A",
                                        {{"/relaxation/drift_per_decade_rel", field(0.01, 0.001)}});
  bench::CalibrationFitOptions options;
  options.base = base_file;
  options.measurements = {a};
  const auto fitted = bench::fit_calibration(options);
  const json& fields = fitted.calibration["measurements"]["fields"];
  CHECK(fields["/hcs_levels"]["source"] == "characterization");
  CHECK(fields["/lcs/median_conductance_us"]["source"] == "characterization");
  CHECK(fields["/read/noise_relative"]["source"] == "characterization");
  CHECK(fields["/relaxation/drift_per_decade_rel"]["source"] == "retention");
  CHECK(fitted.calibration["identity"]["source"] == "characterization+measurements");
  const auto& nm = fitted.not_measured;
  CHECK(std::find(nm.begin(), nm.end(), "/forming/sigma_v") != nm.end());
  CHECK(std::find(nm.begin(), nm.end(), "/hcs_levels") == nm.end());
  fs::remove(base_file);
  fs::remove_all(a);
}

TEST_CASE("a campaign's calibrate step fits the calibration from its measurement steps",
          "[calibrate][campaign]") {
  const fs::path truth_file = scratch("campaign-truth.json"),
                 base_file = scratch("campaign-base.json");
  write_disturb_models(truth_file, base_file);
  const std::string device = "sim:?seed=3&formed=1&calibration=" + truth_file.string();
  const json plan = {{"campaign", "fit"},
                     {"steps",
                      {{{"id", "disturb"},
                        {"type", "read-disturb"},
                        {"device", device},
                        {"cells", 48},
                        {"levels", {1, 4}},
                        {"reads", 300},
                        {"points", 10},
                        {"board-settings", {{"read_voltage_v", 0.25}}},
                        {"base-calibration", base_file.string()}},
                       {{"id", "fit"},
                        {"type", "calibrate"},
                        {"from", {"@disturb"}},
                        {"base", base_file.string()}}}}};
  const fs::path campaign_file = scratch("fit-campaign.json"), dir = scratch("fit-run"),
                 log = scratch("fit-run.log");
  std::ofstream(campaign_file) << plan.dump();
  const int rc = test::run({METAPLAST_BINARY_DIR "/bin/metaplast", "campaign", "run",
                            campaign_file.string(), "--out", dir.string(), "--quiet"},
                           log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);
  const fs::path fitted_file = dir / "steps" / "fit" / "calibration.json";
  const auto fitted = devices::load_calibration(fitted_file);
  CHECK(fitted.read_disturb.rel_per_read == Approx(1e-4).epsilon(0.05));
  const json doc = common::read_json_file(fitted_file);
  CHECK(doc["measurements"]["fields"]["/read_disturb/rel_per_read"]["from"] ==
        (dir / "steps" / "disturb").string());
  const json record = common::read_json_file(dir / "record.json");
  INFO(record.dump(2));
  for (const auto& p : {truth_file, base_file, campaign_file, dir, log}) fs::remove_all(p);
}

TEST_CASE("malformed calibrate steps of a campaign name their JSON path", "[calibrate][campaign]") {
  const std::string disturb = R"({"id": "d", "type": "read-disturb", "reads": 20}, )";
  const auto c = campaign::parse_campaign(json::parse(R"({"campaign": "c", "steps": [)" + disturb +
                                                      R"({"id": "ch", "type": "characterize"},
                     {"id": "fit", "type": "calibrate", "from": "@d", "base": "@ch"},
                     {"id": "t", "type": "train", "calibration": "@fit"}]})"),
                                          "camp.json");
  REQUIRE(c.steps.size() == 4);
  CHECK(c.steps[2].options["from"] == json::array({"steps/d"}));
  CHECK(c.steps[2].options["base"] == "steps/ch/calibration.json");
  CHECK(c.steps[3].options["calibration"] == "steps/fit/calibration.json");

  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate"})"),
             Catch::Contains("camp.json: /steps/1/from: missing"));
  CHECK_THAT(campaign_error(R"({"id": "t", "type": "train"}, {"id": "f", "type": "calibrate",
                                "from": ["@t"]})"),
             Catch::Contains("/steps/1/from/0") && Catch::Contains("not a measurement"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate", "from": ["@e"]})"),
             Catch::Contains("/steps/1/from/0") && Catch::Contains("dangling reference"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate", "from": [3]})"),
             Catch::Contains("/steps/1/from/0"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate", "from": "@d",
                                          "base": 1})"),
             Catch::Contains("/steps/1/base"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate", "from": "@d",
                                          "include-unidentifiable": "yes"})"),
             Catch::Contains("/steps/1/include-unidentifiable"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "calibrate", "from": "@d",
                                          "form": 1})"),
             Catch::Contains("/steps/1/form") && Catch::Contains("unknown key"));
  CHECK_THAT(campaign_error(disturb + R"({"id": "f", "type": "repeat", "seeds": [1, 2],
                                          "step": {"type": "calibrate", "from": "@d"}})"),
             Catch::Contains("/steps/1/step/type") && Catch::Contains("cannot be nested"));
}
