// The run directory of a campaign: what was run (campaign, station, plan), with what (version,
// git commit, boards and chips, seeds), when and how it ended (record.json), and where it is
// (state.json: which steps are done). Layout: docs/run-records.md. Every JSON file here is
// replaced atomically (temporary file + rename), so a crash leaves the old or the new content.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/campaign/campaign.hpp"
#include "app/util/file_lock.hpp"

namespace metaplast::campaign {

inline constexpr const char* kCampaignFile = "campaign.json";
inline constexpr const char* kStationFile = "station.json";
inline constexpr const char* kPlanFile = "plan.json";
inline constexpr const char* kRecordFile = "record.json";
inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kLogFile = "campaign.log";
inline constexpr const char* kLockFile = "record.lock";  // held while state/record are updated
inline constexpr const char* kLockDir = "locks";         // <index>.lock: held while a step runs

// Step status in state.json.
inline constexpr const char* kPending = "pending";
inline constexpr const char* kRunning = "running";  // started, not finished (killed, interrupted)
inline constexpr const char* kDone = "done";
inline constexpr const char* kFailed = "failed";

// The metaplast version and the git commit of the source tree it was built from (read with
// `git rev-parse` at run time; "unknown" when git or the tree is not there).
struct BuildIdentity {
  std::string version;
  std::string git_commit;
  bool git_dirty = false;
};
BuildIdentity build_identity();

// Several processes may work on one run directory at once (campaign run --jobs, Slurm array
// tasks: docs/cluster.md). Every update of state.json or record.json therefore re-reads the file
// under the run's lock (kLockFile), changes it and replaces it before the lock is released; a
// step is run only by the process holding its step lock (lock_step).
class RunRecord {
 public:
  // A new run in `dir` (absent or empty, else std::invalid_argument): writes campaign.json (the
  // document as run), station.json, plan.json, record.json and state.json (every step pending).
  static RunRecord create(const std::filesystem::path& dir, const Campaign& campaign,
                          const nlohmann::json& station, const std::string& command_line);
  // An existing run (for resume). Throws std::invalid_argument naming the missing file.
  static RunRecord open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& state() const { return state_; }
  const nlohmann::json& record() const { return record_; }
  nlohmann::json plan() const;  // plan.json
  std::string status_of(const std::string& step_id) const;
  // The step's entry in state.json (status, attempts, attempt, result or error), an empty object
  // for an unknown id.
  const nlohmann::json& step(const std::string& step_id) const;
  // Re-reads state.json and record.json (what other processes have written since).
  void refresh();
  // The lock that lets one process run step `index` of the plan; nullopt when another process
  // holds it (runs that step now).
  std::optional<util::FileLock> lock_step(std::size_t index) const;
  std::filesystem::path step_lock_file(std::size_t index) const;  // <dir>/locks/<index>.lock

  // A new session (run, resume, submit) starts: appended to record.json "sessions". An earlier
  // session that never recorded its end gets the status `unended` ("killed" when the process
  // died; "incomplete" for a Slurm submission whose merge never ran).
  void begin_session(const std::string& command_line, const std::string& unended = "killed");
  void step_started(const std::string& step_id);
  void step_finished(const std::string& step_id, const nlohmann::json& result);
  void step_failed(const std::string& step_id, const std::string& error);
  // A board used by a step: its identify answer, the chip id and the board settings in force.
  void add_board(const std::string& step_id, const nlohmann::json& identify,
                 const std::string& chip, const nlohmann::json& board_settings);
  // Sets a key of record.json (e.g. "slurm": the jobs that ran the units).
  void set(const std::string& key, const nlohmann::json& value);
  // The session ends: status "finished", "interrupted", "aborted" or "failed", exit code.
  void end_session(const std::string& status, int exit_code, const std::string& message);

 private:
  std::filesystem::path dir_;
  nlohmann::json state_, record_;
  void save_state();
  void save_record();
  void end_session_unlocked(const std::string& status, int exit_code, const std::string& message);
  nlohmann::json& step_entry(const std::string& step_id);
  void reload();  // state.json and record.json (the caller holds the run's lock)
  // Under the run's lock: re-read both files, apply `change`, write them back.
  template <class Change>
  void update(Change&& change);
};

// Writes `value` (pretty-printed) atomically. Throws std::runtime_error naming the file.
void write_json_atomically(const std::filesystem::path& file, const nlohmann::json& value);
// Reads a JSON file; throws std::invalid_argument naming the file.
nlohmann::json read_json(const std::filesystem::path& file);

}  // namespace metaplast::campaign
