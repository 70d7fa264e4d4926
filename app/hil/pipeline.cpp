#include "app/hil/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "app/util/csv.hpp"
#include "app/util/statistics.hpp"
#include "common/atomic_file.hpp"
#include "common/json_file.hpp"

namespace metaplast::hil {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& file) { return common::read_json_file(file); }

}  // namespace

nlohmann::json summarise_runs(const std::vector<fs::path>& run_dirs) {
  // (task_trained order, epoch, task_evaluated, split) -> accuracies
  using Key = std::tuple<std::size_t, int, std::string, std::string, std::string>;
  std::map<Key, std::vector<double>> rows;
  std::map<std::string, std::size_t> task_order;
  std::vector<double> max_per_cell;
  nlohmann::json runs = nlohmann::json::array();
  std::map<std::string, std::map<std::string, std::vector<double>>> after_task;
  for (const fs::path& dir : run_dirs) {
    std::ifstream in(dir / learning::kMetricsFile);
    if (!in) throw std::runtime_error("cannot read " + (dir / learning::kMetricsFile).string());
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::stringstream s(line);
      std::string trained, epoch, evaluated, split, accuracy;
      std::getline(s, trained, ',');
      std::getline(s, epoch, ',');
      std::getline(s, evaluated, ',');
      std::getline(s, split, ',');
      std::getline(s, accuracy, ',');
      const std::size_t order = task_order.emplace(trained, task_order.size()).first->second;
      rows[{order, std::stoi(epoch), trained, evaluated, split}].push_back(std::stod(accuracy));
    }
    const nlohmann::json summary = read_json(dir / learning::kSummaryFile);
    for (const auto& [trained, evaluated] : summary["after_task"].items()) {
      for (const auto& [task, accuracy] : evaluated.items()) {
        after_task[trained][task].push_back(accuracy.get<double>());
      }
    }
    if (summary.contains("writes")) {
      max_per_cell.push_back(summary["writes"]["max_per_cell"].get<double>());
    }
    runs.push_back(dir.string());
  }
  nlohmann::json per_epoch = nlohmann::json::array();
  for (const auto& [key, values] : rows) {
    const util::Summary s = util::summarize(values);
    per_epoch.push_back({{"task_trained", std::get<2>(key)},
                         {"epoch", std::get<1>(key)},
                         {"task_evaluated", std::get<3>(key)},
                         {"split", std::get<4>(key)},
                         {"mean", s.mean},
                         {"std", s.std},
                         {"n", s.n},
                         {"min", s.min},
                         {"max", s.max}});
  }
  nlohmann::json j;
  j["runs"] = runs;
  j["per_epoch"] = per_epoch;
  nlohmann::json at = nlohmann::json::object();
  for (const auto& [trained, evaluated] : after_task) {
    for (const auto& [task, values] : evaluated) {
      const util::Summary s = util::summarize(values);
      at[trained][task] = {{"mean", s.mean}, {"std", s.std}, {"n", s.n}};
    }
  }
  j["after_task"] = at;
  if (!max_per_cell.empty()) {
    const util::Summary s = util::summarize(max_per_cell);
    j["writes_max_per_cell"] = {{"mean", s.mean}, {"max", s.max}};
  }
  return j;
}

nlohmann::json run_repetitions(const learning::TrainConfig& config, const fs::path& out_dir,
                               int repeat, const learning::RunControl& control) {
  if (repeat < 1) {
    throw std::invalid_argument("--repeat must be >= 1, got " + std::to_string(repeat));
  }
  fs::create_directories(out_dir);
  std::vector<fs::path> dirs;
  nlohmann::json seeds = nlohmann::json::array();
  for (int r = 0; r < repeat; ++r) {
    learning::TrainConfig c = config;
    c.seed = config.seed + static_cast<std::uint64_t>(r);
    const fs::path dir = out_dir / ("seed-" + std::to_string(c.seed));
    seeds.push_back(c.seed);
    dirs.push_back(dir);
    if (fs::exists(dir / learning::kSummaryFile)) {
      spdlog::info("repetition {}/{} (seed {}) already finished in {}", r + 1, repeat, c.seed,
                   dir.string());
      continue;
    }
    const bool resume = fs::exists(dir / learning::kCheckpointFile);
    spdlog::info("repetition {}/{} (seed {}) into {}", r + 1, repeat, c.seed, dir.string());
    const nlohmann::json summary = hil::run_training(c, dir, resume, control);
    if (summary.value("status", "") == "stopped") return summary;
  }
  nlohmann::json j = summarise_runs(dirs);
  j["seeds"] = seeds;
  j["status"] = "finished";
  j["final"] = j["after_task"][config.tasks.back()];
  // Written whole (a full disk: one error naming the file, nothing truncated left behind).
  common::write_file_atomically(out_dir / "repeat_summary.json", j.dump(2) + "\n");
  util::CsvWriter csv(
      {"task_trained", "epoch", "task_evaluated", "split", "mean", "std", "n", "min", "max"});
  for (const auto& row : j["per_epoch"]) {
    csv.text(row["task_trained"].get<std::string>()).integer(row["epoch"].get<int>());
    csv.text(row["task_evaluated"].get<std::string>()).text(row["split"].get<std::string>());
    csv.number(row["mean"].get<double>()).number(row["std"].get<double>());
    csv.integer(row["n"].get<std::size_t>());
    csv.number(row["min"].get<double>()).number(row["max"].get<double>()).end_row();
  }
  common::write_file_atomically(out_dir / "repeat_summary.csv", csv.str());
  return j;
}

}  // namespace metaplast::hil
