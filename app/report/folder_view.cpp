#include "app/report/folder_view.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "app/campaign/evaluate.hpp"
#include "app/util/csv.hpp"
#include "common/json_file.hpp"

namespace metaplast::report {

namespace {

namespace fs = std::filesystem;

// A JSON file as it is now, or null while it is absent or caught half-written (the writers
// replace files atomically, but a reader may still race a rename on some file systems).
nlohmann::json try_read_json(const fs::path& file) {
  if (!fs::exists(file)) return nullptr;
  try {
    return common::read_json_file(file);
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// conductances.csv (row,col,conductance_us) as a board_map body of a 128 x 128 array.
nlohmann::json board_map(const fs::path& file) {
  constexpr int kRows = 128, kCols = 128;
  nlohmann::json map(kRows * kCols, nullptr);
  std::istringstream lines(read_text(file));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    const auto fields = util::try_csv_split(line);
    if (!fields || fields->size() < 3) continue;
    try {
      const int row = std::stoi((*fields)[0]), col = std::stoi((*fields)[1]);
      if (row < 0 || row >= kRows || col < 0 || col >= kCols) continue;
      map[static_cast<std::size_t>(row * kCols + col)] = std::stod((*fields)[2]);
    } catch (const std::exception&) {
      continue;  // a line cut by a write in progress
    }
  }
  return {{"rows", kRows},
          {"cols", kCols},
          {"conductance_us", map},
          {"caption", "read after the latest epoch (" + file.filename().string() + ")"}};
}

}  // namespace

FolderView::FolderView(fs::path dir, live::LiveFeed& feed, Writer writer)
    : dir_(std::move(dir)), feed_(feed), writer_(writer) {
  campaign_ = fs::exists(dir_ / "state.json");
  if (!campaign_ && !fs::exists(dir_ / "config.json") && !fs::exists(dir_ / "metrics.csv")) {
    throw std::invalid_argument(
        "view " + dir_.string() +
        ": neither a train run folder (config.json, metrics.csv) nor a campaign folder "
        "(state.json); give the folder `metaplast train --out` or `campaign run --out` wrote");
  }
  if (writer_ == Writer::other_process) {
    feed_.publish("run", {{"command", campaign_ ? "view (campaign)" : "view (train)"},
                          {"out_dir", dir_.string()},
                          {"stoppable", false}});
  }
}

void FolderView::publish_changed(const std::string& kind, const nlohmann::json& body) {
  std::string text = body.dump();
  auto& last = last_body_[kind];
  if (last == text) return;
  last = std::move(text);
  feed_.publish(kind, body);
}

bool FolderView::changed(const fs::path& file) {
  std::error_code error;
  const auto size = fs::file_size(file, error);
  if (error) return false;
  const auto time = fs::last_write_time(file, error);
  if (error) return false;
  auto& seen = seen_[file.string()];
  if (seen.first == size && seen.second == time) return false;
  seen = {size, time};
  return true;
}

bool FolderView::poll() { return campaign_ ? poll_campaign() : poll_train(); }

bool FolderView::poll_train() {
  if (tasks_.empty() && changed(dir_ / "config.json")) {
    const nlohmann::json config = try_read_json(dir_ / "config.json");
    if (config.is_object() && config.contains("options")) {
      const auto& options = config["options"];
      tasks_ = options.value("tasks", std::vector<std::string>{});
      epochs_per_task_ = options.value("epochs", 0);
      total_epochs_ = tasks_.size() * static_cast<std::size_t>(epochs_per_task_);
      feed_.publish("run", {{"command", "view (train)"},
                            {"out_dir", dir_.string()},
                            {"tasks", tasks_},
                            {"epochs", epochs_per_task_},
                            {"placement", options.value("placement", "ideal")},
                            {"stoppable", false}});
    }
  }
  const fs::path metrics = dir_ / "metrics.csv";
  if (changed(metrics)) {
    auto rows = campaign::read_metrics_csv(metrics);
    const std::string text = read_text(metrics);
    // A last line without its newline is being written: left for the next poll.
    if (!text.empty() && text.back() != '\n' && !rows.empty()) {
      const auto cut = util::try_csv_split(std::string_view(text).substr(text.rfind('\n') + 1));
      if (cut && cut->size() >= 6) rows.pop_back();
    }
    // Rows come per epoch, in order: an epoch is whole once the next one starts or the file
    // was flushed at its end (the trainer flushes after every epoch).
    std::vector<nlohmann::json> epochs;
    for (const auto& r : rows) {
      if (epochs.empty() || epochs.back()["task"] != r.task_trained ||
          epochs.back()["epoch"] != r.epoch) {
        std::size_t task_index = 0;
        while (task_index < tasks_.size() && tasks_[task_index] != r.task_trained) ++task_index;
        epochs.push_back(
            {{"task", r.task_trained},
             {"epoch", r.epoch},
             {"epoch_index", static_cast<int>(task_index) * epochs_per_task_ + r.epoch},
             {"evaluations", nlohmann::json::array()}});
      }
      epochs.back()["evaluations"].push_back({{"task", r.task_evaluated},
                                              {"split", r.split},
                                              {"accuracy", r.accuracy},
                                              {"loss", r.loss}});
    }
    // An epoch is published whole: as many rows as the largest epoch (every task, every split).
    std::size_t rows_per_epoch = tasks_.size();
    for (const auto& e : epochs) rows_per_epoch = std::max(rows_per_epoch, e["evaluations"].size());
    if (!epochs.empty() && epochs.back()["evaluations"].size() < rows_per_epoch) epochs.pop_back();
    for (; epochs_published_ < epochs.size(); ++epochs_published_) {
      feed_.publish("epoch", epochs[epochs_published_]);
    }
    if (total_epochs_ > 0) {
      feed_.publish("progress",
                    {{"fraction",
                      static_cast<double>(epochs_published_) / static_cast<double>(total_epochs_)},
                     {"what", std::to_string(epochs_published_) + " of " +
                                  std::to_string(total_epochs_) + " epochs in metrics.csv"}});
    }
  }
  if (changed(dir_ / "conductances.csv"))
    feed_.publish("board_map", board_map(dir_ / "conductances.csv"));
  const nlohmann::json summary = try_read_json(dir_ / "summary.json");
  if (summary.is_object()) {
    if (summary.contains("writes") && summary["writes"].contains("per_epoch")) {
      feed_.publish("writes", {{"per_epoch", summary["writes"]["per_epoch"]},
                               {"first_epoch_index", 1},
                               {"total", summary["writes"].value("total", 0)}});
    }
    publish_changed("status", {{"state", "finished"},
                               {"exit_status", 0},
                               {"message", "summary.json written: the run is complete"}});
    return true;
  }
  publish_changed("status", {{"state", "running"},
                             {"exit_status", 0},
                             {"message",
                              "no summary.json yet: being written by another process, "
                              "or stopped (resume it with metaplast train --resume)"}});
  return false;
}

bool FolderView::poll_campaign() {
  const nlohmann::json plan = try_read_json(dir_ / "plan.json");
  const nlohmann::json state = try_read_json(dir_ / "state.json");
  if (plan.is_object() && state.is_object() && changed(dir_ / "state.json")) {
    std::map<std::string, std::string> folder;
    for (const auto& step : plan.value("steps", nlohmann::json::array())) {
      folder[step.value("id", "")] = step.value("dir", "");
    }
    nlohmann::json steps = nlohmann::json::array();
    std::size_t done = 0;
    for (const auto& step : state.value("steps", nlohmann::json::array())) {
      const std::string id = step.value("id", "");
      const std::string status = step.value("status", "pending");
      if (status == "done") ++done;
      steps.push_back(
          {{"id", id}, {"type", step.value("type", "")}, {"status", status}, {"dir", folder[id]}});
    }
    feed_.publish("campaign", {{"steps", steps}});
    const double total = static_cast<double>(std::max<std::size_t>(steps.size(), 1));
    nlohmann::json progress = pace_.progress(
        static_cast<double>(done) / total,
        std::to_string(done) + " of " + std::to_string(steps.size()) + " steps done");
    // Another process's pace is not this view's: no ETA from it.
    if (writer_ == Writer::other_process) progress.erase("eta_s");
    feed_.publish("progress", progress);
  }
  if (writer_ == Writer::this_process) return false;  // the command says how it ends
  const nlohmann::json record = try_read_json(dir_ / "record.json");
  const std::string status = record.is_object() ? record.value("status", "running") : "running";
  const int exit_code =
      record.is_object() && record.contains("exit_code") && record["exit_code"].is_number_integer()
          ? record["exit_code"].get<int>()
          : 0;
  const bool ended = status != "running";
  publish_changed("status",
                  {{"state", status == "aborted" ? "interrupted" : status},
                   {"exit_status", exit_code},
                   {"message", ended ? "record.json: " + status
                                     : "being run by another process (record.json: running)"}});
  return ended;
}

}  // namespace metaplast::report
