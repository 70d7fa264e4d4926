// Repetitions of a training run (the paper's Fig. 5a: N seeds / device samplings) and their
// statistics.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/hil/training_run.hpp"
#include "app/learning/train_config.hpp"
#include "app/learning/trainer.hpp"

namespace metaplast::hil {

// Runs `config` `repeat` times with seeds config.seed, config.seed + 1, ... into
// out_dir/seed-<seed>/ (each a complete run directory; a finished one is reused, an unfinished
// one resumed), then writes out_dir/repeat_summary.json and out_dir/repeat_summary.csv
// (task_trained,epoch,task_evaluated,split,mean,std,n,min,max: accuracy statistics over the runs,
// std with n - 1) and returns the JSON: {"runs": [...], "seeds": [...], "per_epoch": [rows],
// "after_task": {trained: {evaluated: {"mean", "std"}}}, "final": {...},
// "writes_max_per_cell": {"mean", "max"}}. Throws what run_training throws.
nlohmann::json run_repetitions(const learning::TrainConfig& config,
                               const std::filesystem::path& out_dir, int repeat,
                               const learning::RunControl& control = {});

// Statistics of finished run directories (their metrics.csv and summary.json).
nlohmann::json summarise_runs(const std::vector<std::filesystem::path>& run_dirs);

}  // namespace metaplast::hil
