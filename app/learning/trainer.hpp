// A continual-learning run: tasks trained one after the other, every task evaluated after every
// epoch, metrics and checkpoints written as it goes (see `metaplast train --help`).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/learning/train_config.hpp"

namespace metaplast::learning {

// Files of a run directory.
inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kMetricsFile = "metrics.csv";
inline constexpr const char* kSummaryFile = "summary.json";
inline constexpr const char* kCheckpointFile = "checkpoint.bin";

// Runs `config` into `out_dir` and returns the summary (also written to out_dir/summary.json):
//   {"after_task": {trained: {evaluated: test accuracy}}, "final": {...}, ("after_task_validation",
//    "final_validation" with --validation), "config": config.json's content, "train_seconds",
//    "samples_per_second" (training samples over the time spent in training steps, evaluation
//    excluded), "samples_trained", "peak_rss_mb"}.
// Writes out_dir/config.json at the start, appends out_dir/metrics.csv (task_trained, epoch,
// task_evaluated, split, accuracy, loss) and rewrites out_dir/checkpoint.bin after every epoch.
// Same config (seed and threads included) -> the same numbers, bit for bit.
//
// resume = false: out_dir must be absent or empty (std::invalid_argument otherwise: a finished
// run, or an unfinished one to continue with --resume). resume = true: continues from
// out_dir/checkpoint.bin; `config` must be the run's config.json options (the checkpoint holds a
// hash of them and of the dataset files; a mismatch throws std::runtime_error).
// Data errors propagate from load_task (std::runtime_error naming the file).
nlohmann::json run_training(const TrainConfig& config, const std::filesystem::path& out_dir,
                            bool resume);

}  // namespace metaplast::learning
