// A training run stopped after each of its first three epochs and resumed each time: with 2 tasks
// of 2 epochs, the stops fall on both sides of the task boundary. Tests compare its end with an
// uninterrupted run's to show that a state survives the checkpoint.
#pragma once

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/hil/training_run.hpp"
#include "app/learning/trainer.hpp"

namespace metaplast::test {

// Runs `config` into `dir` stopped three times, then to its end; returns the last summary.
inline nlohmann::json run_stopped_three_times(const learning::TrainConfig& config,
                                              const std::filesystem::path& dir) {
  std::atomic<bool> stop{true};
  learning::RunControl control;
  control.stop_after_epoch = &stop;
  CHECK(hil::run_training(config, dir, false, control)["status"] == "stopped");
  CHECK(hil::run_training(config, dir, true, control)["status"] == "stopped");
  CHECK(hil::run_training(config, dir, true, control)["status"] == "stopped");
  return hil::run_training(config, dir, true);
}

}  // namespace metaplast::test
