// The evaluate step: the test accuracies of finished train runs gathered into one table, and
// their mean and standard deviation over seeds (the paper's Fig. 5a: 15 repeats).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace metaplast::campaign {

struct EvaluatedRun {
  std::string id;             // the train step's id
  std::filesystem::path dir;  // its run directory (metrics.csv)
  nlohmann::json parameters;  // swept values and seed, e.g. {"mstar": 3, "seed": 2}
  // The group it is averaged in, e.g. "mstar=3" or "fig5a (mstar=3)"; empty: from `parameters`
  // without the seed ("mstar=3"), or "all runs" when only the seed varies. Never "{}".
  std::string group;
};

// "mstar=3, lr=0.005": `parameters` without "seed" as key=value ("" when nothing is left).
std::string parameters_label(const nlohmann::json& parameters);

// Reads each run's metrics.csv and writes into out_dir:
//   evaluation.json {"runs": [{"id", "parameters", "group", "final": {task: accuracy}}],
//                    "groups": [{"name", "parameters" (seed removed), "runs", "final_mean": {task},
//                                "final_std": {task}}]}
//   per_epoch.csv   group,task_trained,epoch,task_evaluated,mean,std,runs  (test split; std is
//                   the sample standard deviation, 0 for one run)
// Returns evaluation.json's content. Throws std::runtime_error naming a missing or malformed
// metrics.csv.
nlohmann::json evaluate_runs(const std::vector<EvaluatedRun>& runs,
                             const std::filesystem::path& out_dir);

// One row of a run's metrics.csv.
struct MetricsRow {
  std::string task_trained;
  int epoch = 0;
  std::string task_evaluated, split;
  double accuracy = 0, loss = 0;
};
// Reads metrics.csv (header task_trained,epoch,task_evaluated,split,accuracy,loss). Throws
// std::runtime_error naming the file and line.
std::vector<MetricsRow> read_metrics_csv(const std::filesystem::path& file);

}  // namespace metaplast::campaign
