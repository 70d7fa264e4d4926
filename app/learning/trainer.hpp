// A continual-learning run: tasks trained one after the other, every task evaluated after every
// epoch, metrics and checkpoints written as it goes (see `metaplast train --help`).
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/learning/quantizer.hpp"
#include "app/learning/train_config.hpp"
#include "app/learning/training_hooks.hpp"

namespace metaplast::learning {

// Files of a run directory.
inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kMetricsFile = "metrics.csv";
inline constexpr const char* kSummaryFile = "summary.json";
inline constexpr const char* kCheckpointFile = "checkpoint.bin";

// What the caller learns at the end of every epoch (after the checkpoint of that epoch is written,
// so a stop requested from the callback leaves a resumable run).
struct EpochReport {
  std::string task;            // the task just trained
  std::size_t task_index = 0;  // its position in config.tasks
  int epoch = 0;               // 1-based, within `task`
  int epochs = 0;              // per task
  struct Evaluation {
    std::string task, split;  // split: "test" or "validation"
    double accuracy = 0.0, loss = 0.0;
  };
  std::vector<Evaluation> evaluations;  // every task, after this epoch
  double train_accuracy = 0.0, train_loss = 0.0;
  // Device writes (programming operations, verify retries included) during this epoch and in the
  // whole run so far; 0 when every weight is ideal.
  std::uint64_t epoch_writes = 0, total_writes = 0;
  double train_seconds = 0.0;  // cumulative, whole run
};

// Thrown by run_training when RunControl::abort_now was set: the run stopped between two
// training steps, the epoch in progress is lost, the last checkpoint (previous epoch) is intact,
// so `--resume` continues from there.
class RunAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Optional hooks to stop and observe a run (campaigns, the CLI's signal handling). Null members
// are ignored. The flags may be set from any thread or a signal handler.
struct RunControl {
  // Checked after every epoch's checkpoint: when true, run_training returns a summary with
  // "status": "stopped" (and "next": {"task", "epoch"}), does NOT write summary.json, and the
  // run directory can be continued with resume = true. After the last epoch the run finishes
  // normally whatever the flag says.
  const std::atomic<bool>* stop_after_epoch = nullptr;
  // Checked between training steps: when true, run_training throws RunAborted.
  const std::atomic<bool>* abort_now = nullptr;
  // Called after every epoch (after its checkpoint, before stop_after_epoch is checked).
  // Exceptions propagate out of run_training (the checkpoint of that epoch is already written).
  std::function<void(const EpochReport&)> on_epoch_end;
};

// What a run is made of beside its config: the levels of its weights, where they live, and who
// watches (training_hooks.hpp). The hardware in the loop assembles these (hil::run_training).
struct TrainingHooks {
  explicit TrainingHooks(Quantizer levels) : quantizer(std::move(levels)) {}
  Quantizer quantizer;  // the levels W_Q takes
  // Builds the backend once the layer sizes are known (weights per layer, from the data).
  std::function<std::unique_ptr<WeightBackend>(const std::vector<std::size_t>& layer_weights)>
      make_backend;
  std::vector<TrainingObserver*> observers;  // called in this order; not owned
  // Files the observers keep in the run folder that mark a run as started (the board journal):
  // when a run stopped before its first checkpoint starts over, each is kept as
  // <stem>.stopped-N<extension>; `discarded_files` are removed (docs/run-records.md).
  std::vector<std::string> kept_files, discarded_files;
};

// Runs `config` into `out_dir` and returns the summary (also written to out_dir/summary.json):
//   {"after_task": {trained: {evaluated: test accuracy}}, "final": {...}, ("after_task_validation",
//    "final_validation" with --validation), "final_other_bn_stats" ({"bn-stats": the other test
//    statistics, task: test accuracy after the last task}), "config": config.json's content,
//    "train_seconds",
//    "samples_per_second" (training samples over the time spent in training steps, evaluation
//    excluded), "samples_trained", "peak_rss_mb", "writes" and "store" (from the backend),
//    "status": "finished" (or "stopped", see RunControl)}, plus what the observers add.
// Writes out_dir/config.json at the start, appends out_dir/metrics.csv (task_trained, epoch,
// task_evaluated, split, accuracy, loss) and rewrites out_dir/checkpoint.bin after every epoch.
// Same config (seed and threads included) and hooks -> the same numbers, bit for bit.
//
// resume = false: out_dir must be absent or empty (std::invalid_argument otherwise: a finished
// run, or an unfinished one to continue with --resume). resume = true: continues from
// out_dir/checkpoint.bin; `config` must be the run's config.json options (the checkpoint holds a
// hash of them and of the dataset files; a mismatch throws std::runtime_error).
// Data errors propagate from load_task (std::runtime_error naming the file).
nlohmann::json train(const TrainConfig& config, const std::filesystem::path& out_dir, bool resume,
                     TrainingHooks& hooks, const RunControl& control = {});

}  // namespace metaplast::learning
