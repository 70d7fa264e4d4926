#include "app/campaign/evaluate.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "app/campaign/run_record.hpp"
#include "app/util/csv.hpp"
#include "app/util/statistics.hpp"
#include "common/atomic_file.hpp"
#include "common/json_file.hpp"

namespace metaplast::campaign {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

}  // namespace

std::string parameters_label(const json& parameters) {
  std::string label;
  if (!parameters.is_object()) return label;
  for (const auto& [key, value] : parameters.items()) {
    if (key == "seed") continue;
    label += (label.empty() ? "" : ", ") + key + "=" + common::option_value_text(value);
  }
  return label;
}

std::vector<MetricsRow> read_metrics_csv(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::string line;
  std::getline(in, line);
  if (line.rfind("task_trained,epoch,task_evaluated,split,accuracy,loss", 0) != 0) {
    throw std::runtime_error(file.string() +
                             ": line 1: expected the header "
                             "task_trained,epoch,task_evaluated,split,accuracy,loss");
  }
  std::vector<MetricsRow> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    // A broken quote or fewer fields: a line cut by a crash (the trainer appends whole lines,
    // flushed per epoch).
    const auto fields = util::try_csv_split(line);
    if (!fields || fields->size() < 6) continue;
    MetricsRow r;
    r.task_trained = (*fields)[0];
    r.task_evaluated = (*fields)[2];
    r.split = (*fields)[3];
    try {
      r.epoch = std::stoi((*fields)[1]);
      r.accuracy = std::stod((*fields)[4]);
      r.loss = std::stod((*fields)[5]);
    } catch (const std::exception&) {
      throw std::runtime_error(file.string() + ": line " + std::to_string(number) +
                               ": expected numbers in epoch, accuracy and loss: " + line);
    }
    rows.push_back(r);
  }
  return rows;
}

json evaluate_runs(const std::vector<EvaluatedRun>& runs, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  json result = {{"runs", json::array()}, {"groups", json::array()}};
  // group label -> (parameters, per key (task_trained, epoch, task_evaluated) -> accuracies)
  using EpochKey = std::tuple<std::string, int, std::string>;
  struct Group {
    json parameters;
    std::vector<EpochKey> order;  // key order of first appearance
    std::map<EpochKey, std::vector<double>> per_epoch;
    std::map<std::string, std::vector<double>> final;
    std::size_t runs = 0;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> group_order;
  for (const auto& run : runs) {
    const auto rows = read_metrics_csv(run.dir / "metrics.csv");
    json parameters = run.parameters.is_object() ? run.parameters : json::object();
    json group_parameters = parameters;
    group_parameters.erase("seed");
    std::string label = run.group.empty() ? parameters_label(parameters) : run.group;
    if (label.empty()) label = "all runs";
    if (!groups.count(label)) {
      group_order.push_back(label);
      groups[label].parameters = group_parameters;
    }
    Group& g = groups[label];
    ++g.runs;
    json final = json::object();
    for (const auto& r : rows) {
      if (r.split != "test") continue;
      const EpochKey key{r.task_trained, r.epoch, r.task_evaluated};
      if (!g.per_epoch.count(key)) g.order.push_back(key);
      g.per_epoch[key].push_back(r.accuracy);
      final[r.task_evaluated] = r.accuracy;  // the last row of each task wins
    }
    for (const auto& [task, acc] : final.items()) g.final[task].push_back(acc.get<double>());
    result["runs"].push_back(
        {{"id", run.id}, {"parameters", parameters}, {"group", label}, {"final", final}});
  }
  util::CsvWriter csv({"group", "task_trained", "epoch", "task_evaluated", "mean", "std", "runs"});
  for (std::size_t gi = 0; gi < group_order.size(); ++gi) {
    const Group& g = groups[group_order[gi]];
    json mean = json::object(), std = json::object();
    for (const auto& [task, values] : g.final) {
      const util::Summary s = util::summarize(values);
      mean[task] = s.mean;
      std[task] = s.std;
    }
    result["groups"].push_back({{"name", group_order[gi]},
                                {"parameters", g.parameters},
                                {"runs", g.runs},
                                {"final_mean", mean},
                                {"final_std", std}});
    for (const auto& key : g.order) {
      const util::Summary s = util::summarize(g.per_epoch.at(key));
      const auto& [trained, epoch, evaluated] = key;
      csv.integer(gi).text(trained).integer(epoch).text(evaluated);
      csv.number(s.mean, "%.6f").number(s.std, "%.6f").integer(s.n).end_row();
    }
  }
  common::write_file_atomically(out_dir / "per_epoch.csv", csv.str());
  write_json_atomically(out_dir / "evaluation.json", result);
  return result;
}

}  // namespace metaplast::campaign
