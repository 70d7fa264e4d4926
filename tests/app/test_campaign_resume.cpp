// Crash-safe campaigns, with the real binary: kill -9 in the middle of a train step (and a
// half-written checkpoint left behind), or Ctrl-C, then `campaign resume`: the metrics end
// exactly as in an uninterrupted run, and the run records say what happened.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using metaplast::test::read_file;
using metaplast::test::run;

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-camp-resume", name);
}

// Two train steps of two tasks x 2 epochs: four checkpoints each.
fs::path write_campaign() {
  const fs::path file = scratch("campaign.json");
  std::ofstream(file) << R"({
    "campaign": "resume-test",
    "defaults": {"train": {"tasks": ["mnist", "fashion"], "epochs": 2, "train-limit": 2000,
                           "hidden": [64, 32], "threads": 1, "seed": 4}},
    "steps": [
      {"id": "a", "type": "train", "mstar": 3},
      {"id": "b", "type": "train", "mstar": 0}
    ]})";
  return file;
}

// The uninterrupted reference, run once.
const fs::path& uninterrupted(const fs::path& campaign) {
  static const fs::path dir = [&] {
    const fs::path d = scratch("whole");
    const fs::path log = scratch("whole.log");
    INFO(read_file(log));
    REQUIRE(run({kBinary, "campaign", "run", campaign.string(), "--out", d.string(), "--quiet"},
                log) == 0);
    return d;
  }();
  return dir;
}

void check_same_as_uninterrupted(const fs::path& resumed, const fs::path& whole) {
  for (const char* step : {"a", "b"}) {
    const fs::path r = resumed / "steps" / step, w = whole / "steps" / step;
    INFO(step);
    REQUIRE(fs::exists(r / "summary.json"));
    CHECK(read_file(r / "metrics.csv") == read_file(w / "metrics.csv"));
    const json sr = json::parse(read_file(r / "summary.json"));
    const json sw = json::parse(read_file(w / "summary.json"));
    CHECK(sr["final"] == sw["final"]);
    CHECK(sr["after_task"] == sw["after_task"]);
    CHECK(sr["samples_trained"] == sw["samples_trained"]);
  }
  const json state = json::parse(read_file(resumed / "state.json"));
  for (const auto& s : state["steps"]) CHECK(s["status"] == "done");
  CHECK(state["next"] == 2);
}

}  // namespace

TEST_CASE("kill -9 during a train step, a half-written checkpoint, resume: identical metrics",
          "[campaign][resume]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path campaign = write_campaign();
  const fs::path dir = scratch("killed"), log = scratch("killed.log");
  const pid_t pid = metaplast::test::spawn(
      kBinary, {kBinary, "campaign", "run", campaign.string(), "--out", dir.string()}, log);
  METAPLAST_REQUIRE_FILE_FROM_CHILD(dir / "steps" / "a" / "checkpoint.bin", pid, log);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE_FALSE(fs::exists(dir / "steps" / "a" / "summary.json"));  // killed inside step a
  // The state file says where it was.
  const json state = json::parse(read_file(dir / "state.json"));
  CHECK(state["steps"][0]["status"] == "running");
  CHECK(state["steps"][1]["status"] == "pending");

  // A checkpoint write cut half way: the temporary file holds half a checkpoint.
  const std::string checkpoint = read_file(dir / "steps" / "a" / "checkpoint.bin");
  std::ofstream(dir / "steps" / "a" / "checkpoint.bin.tmp", std::ios::binary)
      << checkpoint.substr(0, checkpoint.size() / 2);

  const fs::path resume_log = scratch("resume.log");
  const int resumed = run({kBinary, "campaign", "resume", dir.string()}, resume_log);
  INFO(read_file(resume_log));
  REQUIRE(resumed == 0);
  CHECK_THAT(read_file(dir / "campaign.log"),
             Catch::Contains("a: continuing from its last epoch checkpoint"));
  check_same_as_uninterrupted(dir, uninterrupted(campaign));

  // The record: both sessions, the killed one marked as such, the seeds, the version.
  const json record = json::parse(read_file(dir / "record.json"));
  REQUIRE(record["sessions"].size() == 2);
  CHECK(record["sessions"][0]["status"] == "killed");
  CHECK(record["sessions"][1]["status"] == "finished");
  CHECK(record["status"] == "finished");
  CHECK(record["exit_code"] == 0);
  CHECK(record["seeds"] == json({4, 4}));
  CHECK_FALSE(record["git_commit"].get<std::string>().empty());
  CHECK(record["metaplast_version"].is_string());
  for (const auto& p : {dir, log, resume_log}) fs::remove_all(p);
}

TEST_CASE("Ctrl-C stops after the epoch's checkpoint, says how to resume, and resumes exactly",
          "[campaign][resume]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path campaign = write_campaign();
  const fs::path dir = scratch("interrupted"), log = scratch("interrupted.log");
  const pid_t pid = metaplast::test::spawn(
      kBinary, {kBinary, "campaign", "run", campaign.string(), "--out", dir.string()}, log);
  METAPLAST_REQUIRE_FILE_FROM_CHILD(dir / "steps" / "a" / "checkpoint.bin", pid, log);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  const std::string output = read_file(log);
  CHECK_THAT(output, Catch::Contains("metaplast campaign resume " + dir.string()));
  const json record = json::parse(read_file(dir / "record.json"));
  CHECK(record["status"] == "interrupted");
  CHECK(record["exit_code"] == 130);
  // Stopped at an epoch boundary inside step a (or, on a very fast machine, before step b).
  const json state = json::parse(read_file(dir / "state.json"));
  CHECK(state["steps"][1]["status"] != "done");

  const fs::path resume_log = scratch("resume2.log");
  const int resumed = run({kBinary, "campaign", "resume", dir.string()}, resume_log);
  INFO(read_file(resume_log));
  REQUIRE(resumed == 0);
  check_same_as_uninterrupted(dir, uninterrupted(campaign));
  for (const auto& p : {dir, log, resume_log}) fs::remove_all(p);
}
