// Campaigns on a real Slurm cluster (docs/cluster.md), started by this test as root with
// tests/slurm/slurm_cluster.sh (one node: this machine): `campaign submit --slurm` gives the
// numbers of a sequential run; a cancelled array task is finished by `campaign resume --slurm`;
// the board units run in one job on the station's node, in order; bad options and a missing
// sbatch give clear errors.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/util/process.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/run_records.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using metaplast::test::read_file;
using metaplast::test::read_json;
using metaplast::test::require_same_numbers;
using metaplast::test::run;

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";
const std::string kClusterScript = METAPLAST_SOURCE_DIR "/tests/slurm/slurm_cluster.sh";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-slurm-campaign", name);
}

// The cluster of this test process: started once, stopped (by pid) when the process ends.
class Cluster {
 public:
  Cluster() : state_(scratch("cluster")) {
    const auto r = metaplast::util::run_process({"bash", kClusterScript, "start", state_.string()});
    INFO(r.out + r.err);
    REQUIRE(r.ok());
    ::setenv("SLURM_CONF", (state_ / "slurm.conf").c_str(), 1);
  }
  ~Cluster() {
    metaplast::util::run_process({"bash", kClusterScript, "stop", state_.string(), "--clean"});
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

 private:
  fs::path state_;
};

void need_cluster() { static Cluster cluster; }

std::string short_hostname() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string name = host;
  return name.substr(0, name.find('.'));
}

// The job ids of every submission of the run in `dir`.
std::set<std::string> job_ids(const fs::path& dir) {
  std::set<std::string> ids;
  const json jobs = read_json(dir / "slurm" / "jobs.json");
  for (const auto& s : jobs["submissions"]) {
    for (const auto& j : s["jobs"]) ids.insert(j["job_id"].get<std::string>());
  }
  return ids;
}

// Waits until no job of the run is in Slurm's queue (ended, cancelled or failed).
void wait_for_jobs(const fs::path& dir, std::chrono::seconds timeout = std::chrono::seconds(600)) {
  const auto ids = job_ids(dir);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto r = metaplast::util::run_process({"squeue", "-h", "-o", "%F"});
    INFO(r.describe() + ": " + r.out + r.err);
    REQUIRE(r.ok());
    bool queued = false;
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) queued = queued || ids.count(line) > 0;
    if (!queued) return;
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL("jobs still queued after " << timeout.count() << " s:\n"
                                      << metaplast::util::run_process({"squeue"}).out);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

std::string status_of(const fs::path& dir) {
  const fs::path log = dir.string() + "-status.log";
  run({kBinary, "campaign", "status", dir.string()}, log);
  return read_file(log);
}

fs::path write_sweep() {
  const fs::path file = scratch("sweep.json");
  metaplast::test::write_sweep_campaign(file);
  return file;
}

const fs::path& sequential() {
  static const fs::path dir = [] {
    const fs::path d = scratch("sequential"), log = scratch("sequential.log");
    const int rc = run(
        {kBinary, "campaign", "run", write_sweep().string(), "--out", d.string(), "--quiet"}, log);
    INFO(read_file(log));
    REQUIRE(rc == 0);
    return d;
  }();
  return dir;
}

// What a submission of the run in `dir` recorded, and its outputs on failure.
std::string outputs(const fs::path& dir) {
  std::string text = status_of(dir);
  for (const auto& e : fs::recursive_directory_iterator(dir / "slurm")) {
    if (e.path().extension() == ".out")
      text += "\n== " + e.path().string() + "\n" + read_file(e.path());
  }
  return text;
}

}  // namespace

TEST_CASE("campaign submit --slurm: job arrays per stage, merged into the sequential record",
          "[slurm]") {
  need_cluster();
  const fs::path dir = scratch("submitted"), log = scratch("submitted.log");
  REQUIRE(
      run({kBinary, "campaign", "submit", write_sweep().string(), "--slurm", "--out", dir.string(),
           "--max-parallel", "2", "--time", "10", "--extra", "--mem-per-cpu=500M"},
          log) == 0);
  INFO(read_file(log));
  CHECK(read_file(log).find("submitted 4 jobs") != std::string::npos);
  const std::string stage0 = read_file(dir / "slurm" / "submit-1" / "stage0.sbatch");
  CHECK(stage0.find("#SBATCH --array=0-5%2") != std::string::npos);
  CHECK(stage0.find("#SBATCH --time=10") != std::string::npos);
  CHECK(stage0.find("#SBATCH --mem-per-cpu=500M") != std::string::npos);
  CHECK(stage0.find("campaign run-unit '" + fs::absolute(dir).lexically_normal().string() + "'") !=
        std::string::npos);
  wait_for_jobs(dir);
  INFO(outputs(dir));
  const json record = read_json(dir / "record.json");
  REQUIRE(record["status"] == "finished");  // the merge job ran
  CHECK(record["slurm"]["submissions"].size() == 1);
  require_same_numbers(sequential(), dir);
  const json state = read_json(dir / "state.json");
  for (const auto& s : state["steps"]) CHECK(s["attempt"].contains("slurm_job"));
  CHECK(fs::exists(dir / "report" / "index.html"));
  CHECK(status_of(dir).find("8 done") != std::string::npos);
}

TEST_CASE("a cancelled array task: campaign resume --slurm submits only what is not done",
          "[slurm]") {
  need_cluster();
  const fs::path dir = scratch("cancelled"), log = scratch("cancelled.log");
  REQUIRE(run({kBinary, "campaign", "submit", write_sweep().string(), "--slurm", "--out",
               dir.string(), "--max-parallel", "1"},
              log) == 0);
  const json jobs = read_json(dir / "slurm" / "jobs.json");
  const std::string array = jobs["submissions"][0]["jobs"][0]["job_id"];
  // Task 5 (one at a time: still pending) is cancelled; the stages after it can never run.
  REQUIRE(metaplast::util::run_process({"scancel", array + "_5"}).ok());
  wait_for_jobs(dir);
  {
    INFO(outputs(dir));
    const json state = read_json(dir / "state.json");
    CHECK(state["steps"][5]["status"] == "pending");
    CHECK(state["steps"][6]["status"] == "pending");  // the evaluation's job was cancelled
    CHECK(read_json(dir / "record.json")["status"] == "running");  // no merge ran
    CHECK(status_of(dir).find("5  sweep/seed=2/mstar=3  pending") != std::string::npos);
  }
  const fs::path resume_log = scratch("resume.log");
  REQUIRE(run({kBinary, "campaign", "resume", dir.string(), "--slurm", "--allow-settings-change"},
              resume_log) == 0);
  INFO(read_file(resume_log));
  const json second = read_json(dir / "slurm" / "jobs.json")["submissions"][1];
  CHECK(second["jobs"][0]["units"] == json::array({5}));  // only the unit not done
  // The resume's permissions reach the tasks.
  CHECK(read_file(dir / "slurm" / "submit-2" / "stage0.sbatch").find("--allow-settings-change\n") !=
        std::string::npos);
  // A second resume while those jobs are queued is refused.
  const fs::path again_log = scratch("again.log");
  CHECK(run({kBinary, "campaign", "resume", dir.string(), "--slurm"}, again_log) != 0);
  CHECK(read_file(again_log).find("still queued or running") != std::string::npos);
  wait_for_jobs(dir);
  INFO(outputs(dir));
  const json record = read_json(dir / "record.json");
  REQUIRE(record["status"] == "finished");
  CHECK(record["sessions"][0]["status"] == "incomplete");
  require_same_numbers(sequential(), dir);
}

TEST_CASE("board units: one job on the station's node, one after another, in plan order",
          "[slurm]") {
  need_cluster();
  const fs::path station = scratch("station.json"), campaign = scratch("lane.json");
  metaplast::test::write_lane_station(station, short_hostname());
  metaplast::test::write_lane_campaign(campaign);
  const fs::path dir = scratch("lane"), log = scratch("lane.log");
  REQUIRE(run({kBinary, "campaign", "submit", campaign.string(), "--slurm", "--out", dir.string(),
               "--station", station.string()},
              log) == 0);
  const std::string board_script = read_file(dir / "slurm" / "submit-1" / "stage0-board.sbatch");
  CHECK(board_script.find("#SBATCH --nodelist=" + short_hostname()) != std::string::npos);
  CHECK(board_script.find("run-unit '" + fs::absolute(dir).lexically_normal().string() +
                          "' 0 2 4") != std::string::npos);
  wait_for_jobs(dir);
  INFO(outputs(dir));
  REQUIRE(read_json(dir / "record.json")["status"] == "finished");
  const auto jobs = metaplast::test::require_lane_in_order(dir);
  CHECK(jobs[0] == jobs[1]);  // all in one job
  CHECK(jobs[1] == jobs[2]);
  const json state = read_json(dir / "state.json");
  const std::string board_job = jobs[0];
  CHECK(state["steps"][1]["attempt"]["slurm_job"] != board_job);  // software: the array
}

TEST_CASE("campaign submit: bad Slurm options and a missing sbatch are refused before anything",
          "[slurm]") {
  const fs::path campaign = write_sweep();
  const fs::path dir = scratch("refused"), log = scratch("refused.log");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--time", "soon"}, "--time \"soon\": give a Slurm time limit"},
      {{"--partition", "a b"}, "--partition \"a b\": give a partition name"},
      {{"--max-parallel", "-1"}, "--max-parallel -1: give 1..100000"},
      {{"--cpus-per-task", "5000"}, "--cpus-per-task 5000: give 1..1024"},
      {{"--extra", "--mem=4G --comment='x'"}, "--extra option \"--comment='x'\""},
      {{"--extra", "mem=4G"}, "each sbatch option must be one word starting with '-'"},
  };
  for (const auto& [options, message] : cases) {
    std::vector<std::string> args = {kBinary,   "campaign", "submit",    campaign.string(),
                                     "--slurm", "--out",    dir.string()};
    args.insert(args.end(), options.begin(), options.end());
    INFO(options[0] + " " + options[1]);
    CHECK(run(args, log) != 0);
    CHECK(read_file(log).find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
  }
  CHECK(run({kBinary, "campaign", "submit", campaign.string(), "--out", dir.string()}, log) != 0);
  CHECK(read_file(log).find("give --slurm") != std::string::npos);

  const std::string path = std::getenv("PATH");
  ::setenv("PATH", "/nonexistent", 1);
  const int rc = run(
      {kBinary, "campaign", "submit", campaign.string(), "--slurm", "--out", dir.string()}, log);
  ::setenv("PATH", path.c_str(), 1);
  CHECK(rc != 0);
  CHECK(read_file(log).find("not found on PATH") != std::string::npos);
  CHECK(read_file(log).find("apt-get install slurm-client") != std::string::npos);
  CHECK_FALSE(fs::exists(dir));
}
