// `metaplast view DIR` (docs/live.md, "Following a folder"): a train run folder or a campaign
// folder, finished or still being written by another process, as a live view's updates. Reads
// only; a file caught half-written is read again at the next poll.
//   train run folder  config.json -> "run" and "progress"; metrics.csv -> one "epoch" per epoch
//                     (whole lines only); conductances.csv -> "board_map"; summary.json ->
//                     "writes" and the status "finished" (exit status 0)
//   campaign folder   plan.json and state.json -> "campaign" (each step's state and folder) and
//                     "progress"; record.json -> the status (running, finished, interrupted,
//                     aborted, failed) and its exit code
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "app/live/live_feed.hpp"
#include "app/live/live_updates.hpp"

namespace metaplast::report {

class FolderView {
 public:
  // Who writes the folder: another process (`metaplast view`: the view publishes the header and
  // the status it reads from the files), or the process that serves the view (`campaign run
  // --live`: the command publishes its own header and status; the view adds the ETA).
  enum class Writer { other_process, this_process };

  // std::invalid_argument when `dir` is neither a train run folder (config.json or
  // metrics.csv) nor a campaign folder (state.json), saying what it expected.
  FolderView(std::filesystem::path dir, live::LiveFeed& feed,
             Writer writer = Writer::other_process);

  // Publishes what changed since the last poll. True once the run or campaign has ended.
  bool poll();

  bool is_campaign() const { return campaign_; }

 private:
  bool poll_train();
  bool poll_campaign();
  // Publishes `body` unless it is the last one published for `kind`.
  void publish_changed(const std::string& kind, const nlohmann::json& body);
  // True when `file` changed (size or time) since the last call for it.
  bool changed(const std::filesystem::path& file);

  std::filesystem::path dir_;
  live::LiveFeed& feed_;
  bool campaign_ = false;
  Writer writer_;
  live::Pace pace_;  // the ETA of a campaign this process runs
  std::map<std::string, std::pair<std::uintmax_t, std::filesystem::file_time_type>> seen_;
  std::map<std::string, std::string> last_body_;
  std::size_t epochs_published_ = 0;
  int epochs_per_task_ = 0;
  std::size_t total_epochs_ = 0;
  std::vector<std::string> tasks_;
};

}  // namespace metaplast::report
