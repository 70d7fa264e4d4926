// Real training runs on the real datasets (fetched by the test command before ctest runs).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast::learning;
using metaplast::hil::run_training;
namespace fs = std::filesystem;

namespace {

using metaplast::test::read_file;

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-test", name);
}

TrainConfig small_config() {
  TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 1;
  c.hidden = {128, 64};
  c.train_limit = 1000;
  c.threads = 2;
  c.seed = 5;
  c.data_dir = default_data_dir();
  return c;
}

}  // namespace

TEST_CASE("one epoch on 10,000 MNIST images without metaplasticity exceeds 85 %", "[training]") {
  TrainConfig c;
  c.tasks = {"mnist"};
  c.epochs = 1;
  c.mstar = 0.0f;
  c.train_limit = 10000;
  c.seed = 1;
  c.threads = 2;
  c.data_dir = default_data_dir();
  const fs::path dir = fresh_dir("mnist10k");
  const nlohmann::json summary = run_training(c, dir, false);
  const double accuracy = summary["final"]["mnist"].get<double>();
  INFO("MNIST test accuracy " << accuracy);
  CHECK(accuracy > 0.85);
  CHECK(summary["after_task"]["mnist"]["mnist"].get<double>() == accuracy);
  CHECK(summary["samples_trained"].get<std::size_t>() == 10000);
  CHECK(summary["samples_per_second"].get<double>() > 0.0);
  const auto& config = summary["config"];
  CHECK(config["options"]["mstar"].get<double>() == 0.0);
  CHECK(config["batchnorm"]["protocol"] == "per-task");
  CHECK(config["datasets"]["mnist"]["train_images"].get<std::size_t>() == 10000);
  CHECK(
      config["datasets"]["mnist"]["sha256"]["train-images-idx3-ubyte"].get<std::string>().size() ==
      64);
  CHECK(config["levels"].size() == 4);  // the default: 4 uniform levels
  const std::string metrics = read_file(dir / kMetricsFile);
  CHECK(metrics.rfind("task_trained,epoch,task_evaluated,split,accuracy,loss\nmnist,1,mnist,test,",
                      0) == 0);
  CHECK(fs::exists(dir / kConfigFile));
  CHECK(fs::exists(dir / kCheckpointFile));
  fs::remove_all(dir);
}

TEST_CASE("same seed and threads give the same numbers; another seed does not", "[training]") {
  const fs::path a = fresh_dir("seed-a"), b = fresh_dir("seed-b"), c = fresh_dir("seed-c");
  TrainConfig config = small_config();
  config.mstar = 3.0f;
  config.validation = 0.2;
  const nlohmann::json first = run_training(config, a, false);
  const nlohmann::json second = run_training(config, b, false);
  CHECK(first["after_task"] == second["after_task"]);
  CHECK(first["after_task_validation"] == second["after_task_validation"]);
  CHECK(read_file(a / kMetricsFile) == read_file(b / kMetricsFile));
  // Every task evaluated after every epoch, untrained tasks included, on test and validation.
  CHECK(first["after_task"]["mnist"].contains("fashion"));
  CHECK(first["final_validation"].contains("mnist"));
  CHECK(first["config"]["datasets"]["fashion"]["train_images"].get<std::size_t>() == 800);
  CHECK(first["config"]["datasets"]["fashion"]["validation_images"].get<std::size_t>() == 200);
  config.seed = 6;
  const nlohmann::json other = run_training(config, c, false);
  CHECK(other["after_task"] != first["after_task"]);
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("summary.json gives the final accuracies under the other BatchNorm statistics too",
          "[training]") {
  // Test-time statistics do not change training: the running-statistics run's "other" figures
  // must be exactly the batch-statistics run's own, and the other way round.
  const fs::path a = fresh_dir("stats-running"), b = fresh_dir("stats-batch");
  TrainConfig config = small_config();
  config.validation = 0.2;
  config.batchnorm_stats = BatchNormStats::running;
  const nlohmann::json running = run_training(config, a, false);
  config.batchnorm_stats = BatchNormStats::batch;
  const nlohmann::json batch = run_training(config, b, false);
  CHECK(running["final_other_bn_stats"]["bn-stats"] == "batch");
  CHECK(batch["final_other_bn_stats"]["bn-stats"] == "running");
  for (const char* task : {"mnist", "fashion"}) {
    INFO(task);
    CHECK(running["final_other_bn_stats"][task] == batch["final"][task]);
    CHECK(batch["final_other_bn_stats"][task] == running["final"][task]);
    // The validation split likewise (what the choice between them is made on).
    CHECK(running["final_validation_other_bn_stats"][task] == batch["final_validation"][task]);
    CHECK(batch["final_validation_other_bn_stats"][task] == running["final_validation"][task]);
  }
  CHECK(running["final_validation_other_bn_stats"]["bn-stats"] == "batch");
  // Not vacuous: the two protocols disagree somewhere.
  CHECK(running["final"] != batch["final"]);
  for (const auto& d : {a, b}) fs::remove_all(d);
}

TEST_CASE("invalid options are refused with a message naming the option", "[training]") {
  TrainConfig c = small_config();
  c.levels = 1;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--levels"));
  c = small_config();
  c.tasks = {"mnist", "cifar"};
  CHECK_THROWS_WITH(c.validate(),
                    Catch::Contains("unknown task 'cifar'") && Catch::Contains("fashion"));
  c = small_config();
  c.epochs = -1;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--epochs"));
  c = small_config();
  c.validation = 1.5;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--validation"));
  c = small_config();
  c.mstar = -1.0f;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--mstar"));
  c = small_config();
  c.batch = 1;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--batch"));
  CHECK_THROWS_WITH(parse_batchnorm_protocol("global"), Catch::Contains("per-task or shared"));
  CHECK_THROWS_WITH(parse_batchnorm_stats("mean"), Catch::Contains("running or batch"));
  c = small_config();
  c.lr_decay = 1.5f;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--lr-decay"));
  CHECK_THROWS_WITH(parse_init_mode("zeros"),
                    Catch::Contains("--init-mode") && Catch::Contains("thresholds"));
}

TEST_CASE("the on-chip preset sets its network, placement and rule, keeping the options given",
          "[training]") {
  TrainConfig c;
  apply_on_chip_preset(c, [](std::string_view) { return false; });
  CHECK(c.hidden == std::vector<std::size_t>{20});
  CHECK(c.placement == "board");
  CHECK(c.rule == MetaplasticRule::global);
  CHECK(c.mstar == 4.0f);
  CHECK(c.init_mode == InitMode::uniform);
  CHECK(c.init == 0.05f);
  CHECK(c.lr_decay == 1.0f);
  CHECK(c.epochs == 20);

  // What the user gave stays.
  TrainConfig given;
  given.mstar = 0.0f;
  given.epochs = 5;
  given.rule = MetaplasticRule::interval;
  given.placement = "ideal";
  apply_on_chip_preset(given, [](std::string_view name) {
    return name == "mstar" || name == "epochs" || name == "rule" || name == "placement";
  });
  CHECK(given.mstar == 0.0f);
  CHECK(given.epochs == 5);
  CHECK(given.rule == MetaplasticRule::interval);
  CHECK(given.placement == "ideal");
  CHECK(given.hidden == std::vector<std::size_t>{20});
  CHECK(given.init_mode == InitMode::uniform);
  CHECK_NOTHROW(given.validate());
}

TEST_CASE("config.json names the initialisation mode unless uniform (the mode of older runs)",
          "[training]") {
  TrainConfig c = small_config();
  CHECK(c.init_mode == InitMode::thresholds);  // the default
  CHECK(c.to_json().at("init-mode") == "thresholds");
  CHECK(TrainConfig::from_json(c.to_json()).init_mode == InitMode::thresholds);
  // Runs made before the option existed have no key and were uniform: they hash as before.
  c.init_mode = InitMode::uniform;
  CHECK_FALSE(c.to_json().contains("init-mode"));
  CHECK(TrainConfig::from_json(c.to_json()).init_mode == InitMode::uniform);
  // The same for a constant learning rate (the default decays: 0.8 per epoch).
  CHECK(TrainConfig::from_json(c.to_json()).lr_decay == 0.8f);
  c.lr_decay = 1.0f;
  CHECK_FALSE(c.to_json().contains("lr-decay"));
  CHECK(TrainConfig::from_json(c.to_json()).lr_decay == 1.0f);
  c.lr_decay = 0.9f;
  CHECK(TrainConfig::from_json(c.to_json()).lr_decay == 0.9f);
}

TEST_CASE("a learning-rate decay changes training from the second epoch of each task on",
          "[training]") {
  const fs::path a = fresh_dir("decay-none"), b = fresh_dir("decay-half");
  TrainConfig config = small_config();
  config.tasks = {"mnist"};
  config.epochs = 2;
  config.lr_decay = 1.0f;
  const nlohmann::json constant = run_training(config, a, false);
  config.lr_decay = 0.5f;
  const nlohmann::json decayed = run_training(config, b, false);
  const std::string first_epoch_a = read_file(a / kMetricsFile).substr(0, 90);
  // Epoch 1 runs at lr * 0.5^0 = lr: identical; epoch 2 at half the rate: different.
  CHECK(read_file(b / kMetricsFile).substr(0, 90) == first_epoch_a);
  CHECK(decayed["final"] != constant["final"]);
  CHECK(decayed["config"]["options"]["lr-decay"].get<double>() == 0.5);
  for (const auto& d : {a, b}) fs::remove_all(d);
}

TEST_CASE("an output directory holding a run is not overwritten", "[training]") {
  const fs::path dir = fresh_dir("finished");
  TrainConfig c = small_config();
  c.tasks = {"mnist"};
  c.train_limit = 300;
  run_training(c, dir, false);
  CHECK_THROWS_WITH(run_training(c, dir, false), Catch::Contains("finished run"));
  CHECK_THROWS_WITH(run_training(c, dir, true), Catch::Contains("already finished"));
  fs::remove(dir / kSummaryFile);
  CHECK_THROWS_WITH(run_training(c, dir, false), Catch::Contains("--resume"));
  fs::remove_all(dir);
}

TEST_CASE("a corrupt or truncated checkpoint gives a clear error", "[training]") {
  const fs::path dir = fresh_dir("corrupt");
  TrainConfig c = small_config();
  c.tasks = {"mnist"};
  c.train_limit = 300;
  c.epochs = 2;
  run_training(c, dir, false);
  fs::remove(dir / kSummaryFile);
  const fs::path checkpoint = dir / kCheckpointFile;
  std::string bytes = read_file(checkpoint);
  {
    std::ofstream out(checkpoint, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CHECK_THROWS_WITH(run_training(c, dir, true), Catch::Contains("truncated"));
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  {
    std::ofstream out(checkpoint, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  CHECK_THROWS_WITH(run_training(c, dir, true), Catch::Contains("corrupt"));
  fs::remove_all(dir);
}
