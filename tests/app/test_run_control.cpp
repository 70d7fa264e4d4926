// RunControl: a run stopped after an epoch is resumable to the uninterrupted numbers; an abort
// throws RunAborted and keeps the last checkpoint; the epoch callback sees every epoch.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast::learning;
using metaplast::hil::run_training;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-control", name);
}

TrainConfig small_config() {
  TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 2;
  c.hidden = {64, 32};
  c.train_limit = 600;
  c.threads = 2;
  c.seed = 9;
  c.data_dir = default_data_dir();
  return c;
}

}  // namespace

TEST_CASE("stop after an epoch: status stopped, no summary.json, resume gives the same numbers",
          "[control]") {
  const TrainConfig c = small_config();
  const fs::path whole = fresh_dir("whole"), stopped = fresh_dir("stopped");

  std::vector<EpochReport> seen;
  RunControl observe;
  observe.on_epoch_end = [&seen](const EpochReport& r) { seen.push_back(r); };
  const nlohmann::json reference = run_training(c, whole, false, observe);
  CHECK(reference["status"] == "finished");
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].task == "mnist");
  CHECK(seen[0].epoch == 1);
  CHECK(seen[3].task == "fashion");
  CHECK(seen[3].task_index == 1);
  CHECK(seen[3].epoch == 2);
  CHECK(seen[3].evaluations.size() == 2);  // both tasks, test split
  CHECK(seen[3].evaluations[0].accuracy == reference["final"]["mnist"].get<double>());

  std::atomic<bool> stop{false};
  RunControl control;
  control.stop_after_epoch = &stop;
  control.on_epoch_end = [&stop](const EpochReport& r) {
    if (r.task == "mnist" && r.epoch == 2) stop = true;  // stop at the task boundary
  };
  const nlohmann::json partial = run_training(c, stopped, false, control);
  CHECK(partial["status"] == "stopped");
  CHECK(partial["next"]["task"] == "fashion");
  CHECK(partial["next"]["epoch"] == 1);
  CHECK_FALSE(fs::exists(stopped / kSummaryFile));
  CHECK(fs::exists(stopped / kCheckpointFile));

  const nlohmann::json resumed = run_training(c, stopped, true);
  CHECK(resumed["status"] == "finished");
  CHECK(resumed["after_task"] == reference["after_task"]);
}

TEST_CASE("abort_now throws RunAborted and leaves a resumable run", "[control]") {
  TrainConfig c = small_config();
  const fs::path dir = fresh_dir("abort");
  std::atomic<bool> abort{false};
  RunControl control;
  control.abort_now = &abort;
  control.on_epoch_end = [&abort](const EpochReport&) { abort = true; };
  CHECK_THROWS_AS(run_training(c, dir, false, control), RunAborted);
  CHECK(fs::exists(dir / kCheckpointFile));
  CHECK_FALSE(fs::exists(dir / kSummaryFile));
  const nlohmann::json resumed = run_training(c, dir, true);
  CHECK(resumed["status"] == "finished");
}
