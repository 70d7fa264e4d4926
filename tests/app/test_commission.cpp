// campaigns/commission.json (docs/bench.md, "The first day at the bench"): the commissioning
// campaign runs on a new simulated chip (a metaplast-simboard over TCP, pristine, with a 3600x
// clock and a device model whose parameters differ from the built-in ones) and its calibrate
// step recovers the simulator's parameters within the tolerances stated here; every step's
// files are there and the report draws the measurements' plots.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/json_file.hpp"
#include "devices/calibration.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path scratch(const std::string& name) {
  return test::scratch_path("metaplast-commission", name);
}

// The chip under test: parameters away from the built-in model where a measurement fits them,
// inside the windows the campaign's measurements cover; a short endurance so that cells wear out
// within the campaign's 1000 cycles.
devices::Calibration chip_model() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.step_mean_rel = -0.05;
  c.relaxation.step_sigma_rel = 0.03;
  c.relaxation.step_time_constant_s = 1000.0;
  c.relaxation.drift_per_decade_rel = 0.02;
  c.relaxation.drift_reference_s = 1.0;
  c.endurance.median_cycles = 600;
  c.endurance.sigma_ln = 0.5;
  c.endurance.stuck_hcs_probability = 0.4;
  c.forming.median_voltage_v = 3.1;
  c.forming.sigma_v = 0.12;
  c.switching.set_threshold_bl_v = 0.85;
  c.switching.set_transition_v = 0.25;
  c.read_disturb.rel_per_read = 1e-4;
  return c;
}

}  // namespace

// Tolerances of the fitted calibration (the campaign as shipped, 16,384 cells formed, 256 in the
// window, 1000 characterised, 450 in retention, 256 cycled, 64 read 1000 times):
// forming median and sigma within 0.02 V; SET threshold within 0.03 V, transition within 0.05 V,
// over-drive slope within 0.02 per volt, width slope within 0.02 V per decade; drift per decade
// within 20 %, step time constant within a factor 1.6, step mean and spread within 0.012, drift
// reference time within a factor 5; endurance median within 10 %, sigma_ln and the stuck-high
// share within 0.1; rel_per_read within 10 %; every level's median within 2 %.
TEST_CASE("the commissioning campaign fits a new chip's calibration from its measurements",
          "[commission][campaign]") {
  const auto truth = chip_model();
  const fs::path model = scratch("chip-model.json");
  devices::save_calibration(truth, model);
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, scratch("simboard.log"),
                              {"--seed", "11", "--clock", "3600", "--calibration", model.string()});
  const fs::path chips = scratch("chips"), station = scratch("station.json"), run = scratch("run"),
                 log = scratch("run.log");
  std::ofstream(station) << json{
      {"station", "commission-test"},
      {"chip", "COMMISSION-TEST-1"},
      {"instruments", {{"array", {{"type", "array-board"}, {"address", board.address()}}}}},
      {"limits", {{"max_read_voltage_v", 0.4}}},  // read disturb at 0.35 V
      {"chips_dir", chips.string()},
      {"allow_pulses", true}}.dump();
  const int rc = test::run({METAPLAST_BINARY_DIR "/bin/metaplast", "campaign", "run",
                            METAPLAST_SOURCE_DIR "/campaigns/commission.json", "--station",
                            station.string(), "--out", run.string(), "--quiet"},
                           log);
  INFO(test::read_file(log));
  REQUIRE(rc == 0);

  const fs::path fitted_file = run / "steps" / "fit" / "calibration.json";
  const auto fitted = devices::load_calibration(fitted_file);
  const json doc = common::read_json_file(fitted_file);
  INFO(doc["measurements"]["fields"].dump(2));
  CHECK(fitted.identity.chip_id == "COMMISSION-TEST-1");
  CHECK(fitted.forming.median_voltage_v == Approx(3.1).margin(0.02));
  CHECK(fitted.forming.sigma_v == Approx(0.12).margin(0.02));
  CHECK(fitted.switching.set_threshold_bl_v == Approx(0.85).margin(0.03));
  CHECK(fitted.switching.set_transition_v == Approx(0.25).margin(0.05));
  CHECK(fitted.switching.set_overdrive_rel_per_v ==
        Approx(truth.switching.set_overdrive_rel_per_v).margin(0.02));
  CHECK(fitted.switching.width_v_per_decade ==
        Approx(truth.switching.width_v_per_decade).margin(0.02));
  CHECK(fitted.relaxation.drift_per_decade_rel == Approx(0.02).epsilon(0.2));
  CHECK(fitted.relaxation.step_time_constant_s > 1000.0 / 1.6);
  CHECK(fitted.relaxation.step_time_constant_s < 1000.0 * 1.6);
  CHECK(fitted.relaxation.step_mean_rel == Approx(-0.05).margin(0.012));
  CHECK(fitted.relaxation.step_sigma_rel == Approx(0.03).margin(0.012));
  CHECK(fitted.relaxation.drift_reference_s > 1.0 / 5);
  CHECK(fitted.relaxation.drift_reference_s < 1.0 * 5);
  CHECK(fitted.endurance.median_cycles == Approx(600).epsilon(0.1));
  CHECK(fitted.endurance.sigma_ln == Approx(0.5).margin(0.1));
  CHECK(fitted.endurance.stuck_hcs_probability == Approx(0.4).margin(0.1));
  CHECK(fitted.read_disturb.rel_per_read == Approx(1e-4).epsilon(0.1));
  REQUIRE(fitted.hcs_levels.size() == truth.hcs_levels.size());
  for (std::size_t i = 0; i < truth.hcs_levels.size(); ++i) {
    CHECK(fitted.hcs_levels[i].median_conductance_us ==
          Approx(truth.hcs_levels[i].median_conductance_us).epsilon(0.02));
  }
  // What was not measured is said, field by field.
  const json& not_measured = doc["measurements"]["not_measured"];
  CHECK(std::find(not_measured.begin(), not_measured.end(), "/yield/defect_fraction") !=
        not_measured.end());
  CHECK(std::find(not_measured.begin(), not_measured.end(), "/forming/median_voltage_v") ==
        not_measured.end());

  // The measurements' files and the report with their plots.
  for (const char* f :
       {"pristine-map/cell_map.png", "form/forming_map.png", "formed-map/cell_map.csv",
        "window-gate/window.png", "window-set/window_scurve.png", "char/cdf.png",
        "retention/retention.h5", "endurance/endurance.png", "disturb/read_disturb.csv"}) {
    INFO(f);
    CHECK(fs::exists(run / "steps" / f));
  }
  const std::string page = test::read_file(run / "report" / "index.html");
  CHECK_THAT(page, Catch::Contains("form-forming_map.png") &&
                       Catch::Contains("endurance-endurance_survival.png"));
  for (const auto& p : {model, chips, station, run, log}) fs::remove_all(p);
}
