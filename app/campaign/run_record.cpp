#include "app/campaign/run_record.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>

#include "app/util/process.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "common/json_file.hpp"

namespace metaplast::campaign {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The source tree: METAPLAST_DEFAULT_DATA_DIR is "<source>/data".
fs::path source_dir() { return fs::path(METAPLAST_DEFAULT_DATA_DIR).parent_path(); }

// git's stdout (trailing newline removed), "" when git is missing or fails.
std::string git_output(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = {"git", "-C", source_dir().string()};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  util::ProcessOptions options;
  options.timeout = std::chrono::seconds(30);
  util::ProcessResult r = util::run_process(argv, options);
  if (!r.ok()) return "";
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r.out;
}

}  // namespace

BuildIdentity build_identity() {
  BuildIdentity id;
  id.version = METAPLAST_VERSION;
  id.git_commit = git_output({"rev-parse", "HEAD"});
  if (id.git_commit.size() != 40) {
    id.git_commit = "unknown";
  } else {
    id.git_dirty = !git_output({"status", "--porcelain", "--untracked-files=no"}).empty();
  }
  return id;
}

void write_json_atomically(const fs::path& file, const json& value) {
  common::write_file_atomically(file, value.dump(2) + "\n");
}

json read_json(const fs::path& file) {
  try {
    return common::read_json_file(file);
  } catch (const common::JsonFileError& e) {
    throw std::invalid_argument(e.what());  // this file's documented error type
  }
}

RunRecord RunRecord::create(const fs::path& dir, const Campaign& campaign, const json& station,
                            const std::string& command_line) {
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    throw std::invalid_argument("run directory " + dir.string() +
                                " is not empty: choose another --out, or continue that run with "
                                "`metaplast campaign resume " +
                                dir.string() + "`");
  }
  fs::create_directories(dir / "steps");
  RunRecord r;
  r.dir_ = dir;
  write_json_atomically(dir / kCampaignFile, campaign.document);
  write_json_atomically(dir / kStationFile, station);
  write_json_atomically(dir / kPlanFile, plan_json(campaign));
  const BuildIdentity build = build_identity();
  char host[256] = "unknown";
  ::gethostname(host, sizeof host - 1);
  r.record_ = {{"campaign", campaign.name},
               {"source", campaign.source},
               {"metaplast_version", build.version},
               {"git_commit", build.git_commit},
               {"git_dirty", build.git_dirty},
               {"host", host},
               {"station", station.value("station", "")},
               {"chip", station.value("chip", "")},
               {"seeds", campaign.seeds()},
               {"started", common::utc_now_iso8601()},
               {"finished", nullptr},
               {"status", "running"},
               {"exit_code", nullptr},
               {"boards", json::array()},
               {"sessions", json::array()}};
  json steps = json::array();
  for (const auto& s : campaign.steps) {
    steps.push_back({{"id", s.id}, {"type", s.type}, {"status", kPending}});
  }
  r.state_ = {{"campaign", campaign.name}, {"next", 0}, {"steps", steps}, {"updated", common::utc_now_iso8601()}};
  r.save_state();
  r.save_record();
  r.begin_session(command_line);
  return r;
}

RunRecord RunRecord::open(const fs::path& dir) {
  for (const char* f : {kCampaignFile, kPlanFile, kRecordFile, kStateFile}) {
    if (!fs::exists(dir / f)) {
      throw std::invalid_argument(dir.string() + " is not a campaign run directory (no " + f +
                                  "); give the directory `campaign run` or `campaign submit` "
                                  "wrote");
    }
  }
  RunRecord r;
  r.dir_ = dir;
  r.state_ = read_json(dir / kStateFile);
  r.record_ = read_json(dir / kRecordFile);
  return r;
}

json RunRecord::plan() const { return read_json(dir_ / kPlanFile); }

template <class Change>
void RunRecord::update(Change&& change) {
  const util::FileLock lock = util::FileLock::acquire(dir_ / kLockFile);
  reload();
  change();
}

void RunRecord::reload() {
  state_ = read_json(dir_ / kStateFile);
  record_ = read_json(dir_ / kRecordFile);
}

void RunRecord::refresh() {
  const util::FileLock lock = util::FileLock::acquire(dir_ / kLockFile);
  reload();
}

fs::path RunRecord::step_lock_file(std::size_t index) const {
  return dir_ / kLockDir / (std::to_string(index) + ".lock");
}

std::optional<util::FileLock> RunRecord::lock_step(std::size_t index) const {
  fs::create_directories(dir_ / kLockDir);
  return util::FileLock::try_acquire(step_lock_file(index));
}

json& RunRecord::step_entry(const std::string& step_id) {
  for (auto& s : state_["steps"]) {
    if (s["id"] == step_id) return s;
  }
  throw std::invalid_argument(dir_.string() + "/" + kStateFile + ": no step " + step_id);
}

const json& RunRecord::step(const std::string& step_id) const {
  static const json none = json::object();
  for (const auto& s : state_["steps"]) {
    if (s["id"] == step_id) return s;
  }
  return none;
}

std::string RunRecord::status_of(const std::string& step_id) const {
  return step(step_id).value("status", std::string(kPending));
}

void RunRecord::save_state() {
  state_["updated"] = common::utc_now_iso8601();
  std::size_t next = 0;
  while (next < state_["steps"].size() && state_["steps"][next]["status"] == kDone) ++next;
  state_["next"] = next;
  write_json_atomically(dir_ / kStateFile, state_);
}

void RunRecord::save_record() { write_json_atomically(dir_ / kRecordFile, record_); }

void RunRecord::begin_session(const std::string& command_line, const std::string& unended) {
  update([&] {
    // A session that never recorded its end was killed (kill -9, power, crash).
    if (!record_["sessions"].empty() && record_["sessions"].back()["finished"].is_null()) {
      record_["sessions"].back()["status"] = unended;
    }
    record_["sessions"].push_back({{"command", command_line},
                                   {"started", common::utc_now_iso8601()},
                                   {"finished", nullptr},
                                   {"status", "running"},
                                   {"pid", ::getpid()}});
    record_["status"] = "running";
    record_["finished"] = nullptr;
    record_["exit_code"] = nullptr;
    save_record();
  });
}

namespace {

// Where this attempt of a step runs: the host, the process and, under Slurm, the job.
json attempt_place() {
  char host[256] = "unknown";
  ::gethostname(host, sizeof host - 1);
  json place = {{"host", host}, {"pid", ::getpid()}};
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* array = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  if (array != nullptr && task != nullptr) {
    place["slurm_job"] = std::string(array) + "_" + task;  // as squeue and sacct name it
  } else if (job != nullptr) {
    place["slurm_job"] = job;
  }
  return place;
}

}  // namespace

void RunRecord::step_started(const std::string& step_id) {
  update([&] {
    auto& s = step_entry(step_id);
    s["status"] = kRunning;
    const std::string now = common::utc_now_iso8601_ms();
    if (!s.contains("started")) s["started"] = now;
    s["attempts"] = s.value("attempts", 0) + 1;
    s["attempt"] = attempt_place();
    s["attempt"]["started"] = now;
    save_state();
  });
}

void RunRecord::step_finished(const std::string& step_id, const json& result) {
  update([&] {
    auto& s = step_entry(step_id);
    s["status"] = kDone;
    s["finished"] = common::utc_now_iso8601_ms();
    if (!result.is_null()) s["result"] = result;
    s.erase("error");
    save_state();
  });
}

void RunRecord::step_failed(const std::string& step_id, const std::string& error) {
  update([&] {
    auto& s = step_entry(step_id);
    s["status"] = kFailed;
    s["error"] = error;
    save_state();
  });
}

void RunRecord::add_board(const std::string& step_id, const json& identify, const std::string& chip,
                          const json& board_settings) {
  update([&] {
    record_["boards"].push_back({{"step", step_id},
                                 {"identify", identify},
                                 {"chip", chip},
                                 {"board_settings", board_settings},
                                 {"date", common::utc_now_iso8601()}});
    save_record();
  });
}

void RunRecord::set(const std::string& key, const json& value) {
  update([&] {
    record_[key] = value;
    save_record();
  });
}

void RunRecord::end_session(const std::string& status, int exit_code, const std::string& message) {
  update([&] { end_session_unlocked(status, exit_code, message); });
}

void RunRecord::end_session_unlocked(const std::string& status, int exit_code,
                                     const std::string& message) {
  auto& session = record_["sessions"].back();
  session["finished"] = common::utc_now_iso8601();
  session["status"] = status;
  session["exit_code"] = exit_code;
  if (!message.empty()) session["message"] = message;
  record_["status"] = status;
  record_["exit_code"] = exit_code;
  if (status == "finished") record_["finished"] = common::utc_now_iso8601();
  save_record();
}

}  // namespace metaplast::campaign
