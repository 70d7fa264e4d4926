// metaplast train --station: the station's safety limits are enforced on the training's board
// session (before anything is sent), not only its address and chip.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"

namespace fs = std::filesystem;
using metaplast::hil::run_training;
using metaplast::learning::TrainConfig;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("metaplast_test_train_station_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

fs::path write_station(const fs::path& dir, const std::string& limits) {
  const fs::path file = dir / "station.json";
  std::ofstream(file) << R"({"station": "test", "limits": )" << limits << "}";
  return file;
}

TrainConfig small_board_run(const fs::path& station) {
  TrainConfig config;
  config.tasks = {"mnist"};
  config.epochs = 1;
  config.train_limit = 300;
  config.hidden = {16};
  config.threads = 1;
  config.placement = "ideal,board";
  config.device = "sim:?seed=3&formed=1";
  config.station = station;
  config.data_dir = metaplast::learning::default_data_dir();
  return config;
}

}  // namespace

TEST_CASE("a station whose limits forbid the board settings stops the run before training") {
  const fs::path dir = fresh_dir("strict");
  // 1 V on the word line is below every SET gate voltage the board needs.
  const fs::path station = write_station(dir, R"({"max_wl_voltage_v": 0.5})");
  try {
    run_training(small_board_run(station), dir / "run", false);
    FAIL("the run should have been refused by the station limits");
  } catch (const std::exception& e) {
    const std::string message = e.what();
    INFO(message);
    REQUIRE(message.find("wl") != std::string::npos);
  }
  REQUIRE_FALSE(fs::exists(dir / "run" / "summary.json"));
}

TEST_CASE("a station with workable limits trains through the board and records the station") {
  const fs::path dir = fresh_dir("workable");
  const fs::path station = write_station(dir, R"({"max_pulses_per_verify": 50})");
  const auto summary = run_training(small_board_run(station), dir / "run", false);
  REQUIRE(summary.at("status") == "finished");
  REQUIRE(summary.at("config").at("options").at("station") == station.string());
}
