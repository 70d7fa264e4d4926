// `metaplast train`: the metaplastic quantized network trained in software on a sequence of tasks.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "app/cli/commands.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"

namespace metaplast::cli {

namespace {

namespace fs = std::filesystem;
using learning::TrainConfig;

struct TrainArguments {
  TrainConfig config;
  std::string rule = "interval", bn = "per-task", bn_stats = "running";
  std::string data_dir, out_dir, resume_dir;
};

std::string timestamped_run_dir() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "runs/%Y%m%d-%H%M%S", &local);
  return buf;
}

TrainConfig config_from_arguments(const TrainArguments& args) {
  TrainConfig c = args.config;
  c.rule = learning::parse_rule(args.rule);
  c.batchnorm = learning::parse_batchnorm_protocol(args.bn);
  c.batchnorm_stats = learning::parse_batchnorm_stats(args.bn_stats);
  c.data_dir = args.data_dir.empty() ? learning::default_data_dir() : fs::path(args.data_dir);
  return c;
}

// The options of the run in `dir`, checked against every option given on this command line.
TrainConfig resumed_config(const CLI::App& command, const TrainArguments& args) {
  const fs::path dir = args.resume_dir;
  const fs::path config_file = dir / learning::kConfigFile;
  std::ifstream in(config_file);
  if (!in) {
    throw std::invalid_argument("--resume " + dir.string() + ": no " + config_file.string() +
                                "; is this a metaplast run directory?");
  }
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(config_file.string() + " is not valid JSON: " + e.what());
  }
  if (!stored.contains("options")) {
    throw std::invalid_argument(config_file.string() + " has no \"options\" object");
  }
  TrainConfig config = TrainConfig::from_json(stored["options"]);
  const nlohmann::json given = config_from_arguments(args).to_json();
  const nlohmann::json& saved = stored["options"];
  for (const auto& [key, value] : given.items()) {
    if (key == "data") continue;  // the data may move; its sha256 is checked instead
    if (command.get_option("--" + key)->count() > 0 && saved.at(key) != value) {
      throw std::invalid_argument("--resume " + dir.string() + ": --" + key + " " + value.dump() +
                                  " differs from the run's " + saved.at(key).dump() + " (" +
                                  config_file.string() +
                                  "); drop the option, or start a new run with --out");
    }
  }
  if (command.get_option("--data")->count() > 0) config.data_dir = args.data_dir;
  if (command.get_option("--out")->count() > 0 &&
      fs::weakly_canonical(args.out_dir) != fs::weakly_canonical(dir)) {
    throw std::invalid_argument(
        "--out and --resume name different directories; a resumed run "
        "continues in its own directory (drop --out)");
  }
  return config;
}

}  // namespace

void add_train_command(CLI::App& root) {
  auto args = std::make_shared<TrainArguments>();
  TrainConfig& c = args->config;
  c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto* train = root.add_subcommand(
      "train",
      "Train the metaplastic quantized network on tasks in sequence (default MNIST then "
      "Fashion-MNIST); writes config.json, metrics.csv, checkpoint.bin and summary.json");
  train->add_option("--tasks", c.tasks, "Tasks in training order (mnist, fashion)")
      ->delimiter(',')
      ->capture_default_str();
  train->add_option("--epochs", c.epochs, "Epochs per task")->capture_default_str();
  train->add_option("--mstar", c.mstar, "Metaplasticity m* (0 = plain Adam)")
      ->capture_default_str();
  train->add_option("--rule", args->rule, "Meta-function: interval (METHOD.md 3) or global (BNN)")
      ->capture_default_str();
  train->add_option("--hidden", c.hidden, "Hidden layer sizes")
      ->delimiter(',')
      ->capture_default_str();
  train->add_option("--levels", c.levels, "Quantization levels, uniform in [-1, 1]")
      ->capture_default_str();
  train->add_option("--init", c.init, "Hidden weights start uniform in [-W, W]")
      ->capture_default_str();
  train->add_option("--bn", args->bn, "BatchNorm state testing old tasks: per-task or shared")
      ->capture_default_str();
  train
      ->add_option("--bn-stats", args->bn_stats,
                   "Test-time BatchNorm statistics: running or batch (the test batch's own)")
      ->capture_default_str();
  train->add_option("--lr", c.learning_rate, "Adam learning rate")->capture_default_str();
  train->add_option("--batch", c.batch, "Batch size")->capture_default_str();
  train->add_option("--seed", c.seed, "Random seed (initialisation and shuffling)")
      ->capture_default_str();
  train
      ->add_option("--train-limit", c.train_limit,
                   "Use only the first N training images of each task (0 = all)")
      ->capture_default_str();
  train
      ->add_option("--validation", c.validation,
                   "Hold out the last fraction F of each training set for validation")
      ->capture_default_str();
  train->add_option("--threads", c.threads, "Threads (BLAS and optimizer)")->capture_default_str();
  train->add_option("--data", args->data_dir,
                    "Dataset directory (default: $METAPLAST_DATA or <repo>/data)");
  train->add_option("--out", args->out_dir, "Run directory (default: runs/<timestamp>)");
  train->add_option("--resume", args->resume_dir,
                    "Continue the killed run in this directory (its config.json is reused)");

  train->callback([train, args] {
    TrainConfig config;
    fs::path out;
    const bool resume = !args->resume_dir.empty();
    if (resume) {
      config = resumed_config(*train, *args);
      out = args->resume_dir;
    } else {
      config = config_from_arguments(*args);
      out = args->out_dir.empty() ? fs::path(timestamped_run_dir()) : fs::path(args->out_dir);
    }
    const nlohmann::json summary = learning::run_training(config, out, resume);
    std::printf("%s\n", summary["final"].dump().c_str());
    std::printf("run directory: %s\n", out.string().c_str());
  });
}

}  // namespace metaplast::cli
