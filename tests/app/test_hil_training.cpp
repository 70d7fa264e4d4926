// Training through the weight stores: ideal devices on every store give the ideal store's
// accuracy, a link corrupting 2 % of frames gives the clean link's result, a stopped hybrid run
// resumes with its stores.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "devices/calibration.hpp"
#include "instruments/board_settings.hpp"
#include "tests/app/support/ideal_device.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
using learning::TrainConfig;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-hil", name);
}

// The on-chip network (784-20-10) on little data: seconds per run.
TrainConfig small_config() {
  TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 1;
  c.hidden = {20};
  c.train_limit = 1000;
  c.threads = 2;
  c.seed = 11;
  c.data_dir = learning::default_data_dir();
  return c;
}

fs::path ideal_device_calibration(const fs::path& dir) {
  const devices::Calibration c = metaplast::test::ideal_device();
  fs::create_directories(dir);
  const fs::path file = dir / "ideal-device.json";
  devices::save_calibration(c, file);
  return file;
}

double final_accuracy(const nlohmann::json& summary, const char* task) {
  return summary["final"][task].get<double>();
}

}  // namespace

TEST_CASE("with a noise-free device model, virtual and board stores match the ideal store",
          "[hil]") {
  const fs::path base = fresh_dir("ideal-device");
  const fs::path calibration = ideal_device_calibration(base);
  TrainConfig c = small_config();
  c.calibration = calibration;
  // The model file names its chip; the simulated board reports its own (one per seed): the
  // calibration is declared this chip's, as --chip does on the bench.
  c.chip = devices::load_calibration(calibration).identity.chip_id;

  c.placement = "ideal";
  const nlohmann::json ideal = hil::run_training(c, base / "ideal", false);
  c.placement = "virtual";
  const nlohmann::json virtual_run = hil::run_training(c, base / "virtual", false);
  c.placement = "virtual,board";
  c.device = "sim:?seed=2&formed=1&calibration=" + calibration.string();
  const nlohmann::json board = hil::run_training(c, base / "board", false);

  // Same levels, same seed: a noise-free virtual device is W_Q exactly.
  CHECK(virtual_run["after_task"] == ideal["after_task"]);
  // The board reads through its ADC (a few 0.01 uS of quantization): the same within a point.
  for (const char* task : {"mnist", "fashion"}) {
    INFO(task << ": ideal " << final_accuracy(ideal, task) << ", board "
              << final_accuracy(board, task));
    CHECK(std::abs(final_accuracy(board, task) - final_accuracy(ideal, task)) <= 0.01);
  }
  CHECK(board["store"]["placement"] == nlohmann::json({"virtual", "board"}));
  CHECK(board["writes"]["per_layer"][1]["store"] == "board");
  CHECK(board["writes"]["per_layer"][1]["writes"].get<std::uint64_t>() > 0);
  CHECK(board["writes"]["per_epoch"].size() == 2);
  CHECK(fs::exists(base / "board" / "endurance.csv"));
  CHECK(fs::exists(base / "board" / "memory.json"));
}

TEST_CASE("a board link corrupting 2 % of frames trains to the clean link's result", "[hil]") {
  const fs::path base = fresh_dir("corrupt");
  TrainConfig c = small_config();
  c.placement = "virtual,board";
  c.device = "sim:?seed=3&formed=1";
  const nlohmann::json clean = hil::run_training(c, base / "clean", false);
  c.device = "sim:?seed=3&formed=1&corrupt=0.02&fault_seed=5";
  const nlohmann::json corrupted = hil::run_training(c, base / "corrupt", false);
  CHECK(corrupted["status"] == "finished");
  CHECK(corrupted["after_task"] == clean["after_task"]);
  CHECK(corrupted["writes"]["total"] == clean["writes"]["total"]);
  CHECK(corrupted["writes"]["max_per_cell"] == clean["writes"]["max_per_cell"]);
}

TEST_CASE("a hybrid run stopped after an epoch resumes with its stores", "[hil]") {
  const fs::path base = fresh_dir("resume");
  TrainConfig c = small_config();
  c.epochs = 2;
  c.train_limit = 600;

  SECTION("virtual devices: the resumed run gives the uninterrupted numbers exactly") {
    c.placement = "virtual";
    const nlohmann::json whole = hil::run_training(c, base / "whole", false);
    std::atomic<bool> stop{true};
    learning::RunControl control;
    control.stop_after_epoch = &stop;
    CHECK(hil::run_training(c, base / "stopped", false, control)["status"] == "stopped");
    const nlohmann::json resumed = hil::run_training(c, base / "stopped", true);
    CHECK(resumed["after_task"] == whole["after_task"]);
    CHECK(resumed["writes"]["total"] == whole["writes"]["total"]);
    CHECK(resumed["writes"]["per_epoch"] == whole["writes"]["per_epoch"]);
  }
  SECTION("board: the placement and the per-cell counts carry over") {
    c.placement = "virtual,board";
    // The board keeps its cells across the two sessions (non-volatile state file).
    c.device = "sim:?seed=6&formed=1&state=" + (base / "board-state.bin").string();
    std::atomic<bool> stop{false};
    std::uint64_t writes_at_stop = 0;
    learning::RunControl control;
    control.stop_after_epoch = &stop;
    control.on_epoch_end = [&](const learning::EpochReport& r) {
      if (r.task == "mnist" && r.epoch == 1) {
        writes_at_stop = r.total_writes;
        stop = true;
      }
    };
    const nlohmann::json stopped = hil::run_training(c, base / "board", false, control);
    REQUIRE(stopped["status"] == "stopped");
    const nlohmann::json resumed = hil::run_training(c, base / "board", true);
    CHECK(resumed["status"] == "finished");
    CHECK(resumed["writes"]["per_epoch"].size() == 4);
    CHECK(resumed["writes"]["total"].get<std::uint64_t>() > writes_at_stop);
    CHECK(resumed["writes"]["per_epoch"][0].get<std::uint64_t>() +
              resumed["writes"]["initial"].get<std::uint64_t>() ==
          writes_at_stop);
    // Relaxation and the re-read at resume make it differ a little from an uninterrupted run.
    c.device = "sim:?seed=6&formed=1";
    const nlohmann::json whole = hil::run_training(c, base / "board-whole", false);
    for (const char* task : {"mnist", "fashion"}) {
      CHECK(std::abs(final_accuracy(resumed, task) - final_accuracy(whole, task)) < 0.1);
    }
  }
}

TEST_CASE("board settings: recorded in config.json; a resume with others is refused unless told",
          "[hil][board_settings]") {
  const fs::path base = fresh_dir("settings");
  TrainConfig c = small_config();
  c.epochs = 2;
  c.train_limit = 400;
  c.placement = "virtual,board";
  c.device = "sim:?seed=6&formed=1&state=" + (base / "board-state.bin").string();
  c.board_settings = {{"read_voltage_v", 0.25}, {"set_pulse_width_ns", 150}};
  std::atomic<bool> stop{true};
  learning::RunControl control;
  control.stop_after_epoch = &stop;
  REQUIRE(hil::run_training(c, base / "run", false, control)["status"] == "stopped");
  const auto config = nlohmann::json::parse(std::ifstream(base / "run" / "config.json"));
  const auto& recorded = config["store"]["board_settings"];
  CHECK(recorded["read_voltage_v"] == 0.25);
  CHECK(recorded["set_pulse_width_ns"] == 150.0);
  CHECK(recorded["reset_sl_voltage_v"] == 1.5);  // built-in
  CHECK(recorded.size() == instruments::setting_fields().size());

  // Another read voltage on resume: refused, naming the value recorded and the new one.
  TrainConfig other = c;
  other.board_settings["read_voltage_v"] = 0.22;
  try {
    hil::run_training(other, base / "run", true);
    FAIL("a resume with other board settings was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("read_voltage_v: 0.25 V recorded, 0.22 V now"));
    CHECK_THAT(e.what(), Catch::Contains("--allow-settings-change"));
  }
  // Told: it continues with the new ones, and summary.json records them.
  other.allow_settings_change = true;
  const nlohmann::json resumed = hil::run_training(other, base / "run", true);
  CHECK(resumed["status"] == "finished");
  CHECK(resumed["config"]["store"]["board_settings"]["read_voltage_v"] == 0.22);
  // A setting out of the station limits is refused before the board is opened.
  TrainConfig too_high = c;
  too_high.board_settings = {{"read_voltage_v", 0.5}};
  CHECK_THROWS_WITH(hil::run_training(too_high, base / "too-high", false),
                    Catch::Contains("read_voltage_v = 0.5 exceeds the station limit"));
}

TEST_CASE("differential pairs: noise-free devices reproduce the ideal store's 17-level training",
          "[hil][differential]") {
  const fs::path base = fresh_dir("differential");
  const fs::path calibration = ideal_device_calibration(base);
  TrainConfig c = small_config();
  c.calibration = calibration;
  // The model file names its chip; the simulated board reports its own (one per seed): the
  // calibration is declared this chip's, as --chip does on the bench.
  c.chip = devices::load_calibration(calibration).identity.chip_id;
  c.mapping = "differential";

  c.placement = "ideal";
  const nlohmann::json ideal = hil::run_training(c, base / "ideal", false);
  REQUIRE(ideal["config"]["levels"].size() == 17);
  c.placement = "virtual";
  const nlohmann::json virtual_run = hil::run_training(c, base / "virtual", false);
  c.placement = "virtual,board";
  c.device = "sim:?seed=2&formed=1&calibration=" + calibration.string();
  const nlohmann::json board = hil::run_training(c, base / "board", false);

  CHECK(virtual_run["config"]["levels"] == ideal["config"]["levels"]);
  CHECK(virtual_run["after_task"] == ideal["after_task"]);
  for (const char* task : {"mnist", "fashion"}) {
    INFO(task << ": ideal " << final_accuracy(ideal, task) << ", board "
              << final_accuracy(board, task));
    CHECK(std::abs(final_accuracy(board, task) - final_accuracy(ideal, task)) <= 0.01);
  }
  CHECK(board["store"]["mapping"] == "differential");
  // Two devices per weight: 784 x 20 virtual, 20 x 10 on the board.
  CHECK(board["writes"]["per_layer"][0]["devices"] == 2 * 784 * 20);
  CHECK(board["writes"]["per_layer"][1]["devices"] == 2 * 20 * 10);
  CHECK(board["store"]["analog_devices"] == 2 * (784 * 20 + 20 * 10));
  CHECK(board["memory"]["analog_devices"] == 2 * (784 * 20 + 20 * 10));
}
