// Campaigns in parallel on one machine (docs/cluster.md), with the real binary: `campaign run
// --jobs 2` gives the numbers of a sequential run; the board lane's units never overlap; a unit
// refuses to run before its predecessors or beside another process running it; Ctrl-C passes to
// the children and resume finishes the run; `campaign merge` ends a run whose units ran apart.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/util/file_lock.hpp"
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

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-camp-parallel", name);
}

fs::path write_sweep(int epochs = 1) {
  const fs::path file = scratch("sweep-" + std::to_string(epochs) + ".json");
  metaplast::test::write_sweep_campaign(file, epochs);
  return file;
}

const fs::path& sequential(const fs::path& campaign) {
  static const fs::path dir = [&] {
    const fs::path d = scratch("sequential"), log = scratch("sequential.log");
    const int rc =
        run({kBinary, "campaign", "run", campaign.string(), "--out", d.string(), "--quiet"}, log);
    INFO(read_file(log));
    REQUIRE(rc == 0);
    return d;
  }();
  return dir;
}

}  // namespace

TEST_CASE("campaign run --jobs 2: the numbers of a sequential run", "[parallel]") {
  const fs::path campaign = write_sweep();
  const fs::path dir = scratch("jobs2"), log = scratch("jobs2.log");
  const int rc = run(
      {kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--jobs", "2"}, log);
  INFO(read_file(log));
  REQUIRE(rc == 0);
  require_same_numbers(sequential(campaign), dir);
  const json record = read_json(dir / "record.json");
  CHECK(record["status"] == "finished");
  CHECK(record["sessions"].size() == 1);
  CHECK(fs::exists(dir / "report" / "index.html"));
  CHECK(read_file(log).find("started in process") != std::string::npos);
  // Two units ran at the same time at least once (each attempt records its process).
  const json state = read_json(dir / "state.json");
  bool overlapped = false;
  for (std::size_t i = 0; i + 1 < 6; ++i) {
    const auto& a = state["steps"][i];
    const auto& b = state["steps"][i + 1];
    overlapped = overlapped ||
                 (b["attempt"]["started"].get<std::string>() < a["finished"].get<std::string>());
  }
  CHECK(overlapped);
}

TEST_CASE("campaign run --jobs: the thread budget, and --oversubscribe", "[parallel]") {
  const fs::path campaign = write_sweep();
  const fs::path dir = scratch("budget"), log = scratch("budget.log");
  CHECK(
      run({kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--jobs", "1024"},
          log) != 0);
  CHECK(read_file(log).find("lower --jobs") != std::string::npos);
  CHECK(read_file(log).find("--oversubscribe") != std::string::npos);
  CHECK_FALSE(fs::exists(dir));  // refused before the run directory exists
  CHECK(run({kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--jobs", "0"},
            log) != 0);
}

TEST_CASE("the board lane: board units run one at a time, in plan order", "[parallel]") {
  const fs::path station = scratch("station.json"), campaign = scratch("lane.json");
  metaplast::test::write_lane_station(station);
  metaplast::test::write_lane_campaign(campaign);
  const fs::path dir = scratch("lane"), log = scratch("lane.log");
  {
    const fs::path check_log = scratch("lane-check.log");
    REQUIRE(run({kBinary, "campaign", "check", campaign.string()}, check_log) == 0);
    CHECK(read_file(check_log).find("3 in the board lane") != std::string::npos);
  }
  const int rc = run({kBinary, "campaign", "run", campaign.string(), "--out", dir.string(),
                      "--station", station.string(), "--jobs", "2"},
                     log);
  INFO(read_file(log));
  REQUIRE(rc == 0);
  metaplast::test::require_lane_in_order(dir);
}

TEST_CASE("run-unit: predecessors first, one process per unit; merge ends the run", "[parallel]") {
  const fs::path campaign = write_sweep();
  const fs::path dir = scratch("units"), log = scratch("units.log");
  // A finished run turned back into one whose last train unit, evaluation and report are
  // pending (as after Slurm tasks that never ran).
  REQUIRE(run({kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--jobs", "2"},
              log) == 0);
  json state = read_json(dir / "state.json");
  for (const std::size_t i : {5, 6, 7}) {
    state["steps"][i] = {{"id", state["steps"][i]["id"]},
                         {"type", state["steps"][i]["type"]},
                         {"status", "pending"}};
  }
  std::ofstream(dir / "state.json") << state.dump(2);
  fs::remove_all(dir / "steps" / "sweep" / "seed=2" / "mstar=3");

  SECTION("a unit whose predecessors are not done is refused") {
    CHECK(run({kBinary, "campaign", "run-unit", dir.string(), "stats", "--quiet"}, log) == 1);
    CHECK(read_file(log).find("it waits on step sweep/seed=2/mstar=3, which is pending") !=
          std::string::npos);
  }
  SECTION("a unit another process holds is refused") {
    const auto held = metaplast::util::FileLock::acquire(dir / "locks" / "5.lock");
    CHECK(run({kBinary, "campaign", "run-unit", dir.string(), "5", "--quiet"}, log) == 1);
    CHECK(read_file(log).find("another process is running it") != std::string::npos);
  }
  SECTION("merge refuses while steps are not done, then ends the run") {
    CHECK(run({kBinary, "campaign", "merge", dir.string()}, log) == 1);
    CHECK(read_file(log).find("3 of 8 steps are not done: sweep/seed=2/mstar=3 (pending)") !=
          std::string::npos);
    CHECK(run({kBinary, "campaign", "run-unit", dir.string(), "0", "--quiet"}, log) == 0);
    CHECK(read_file(log).find("already done") == std::string::npos);  // --quiet: log file only
    REQUIRE(run({kBinary, "campaign", "run-unit", dir.string(), "sweep/seed=2/mstar=3", "stats",
                 "report", "--quiet"},
                log) == 0);
    REQUIRE(run({kBinary, "campaign", "merge", dir.string()}, log) == 0);
    require_same_numbers(sequential(campaign), dir);
    const json record = read_json(dir / "record.json");
    CHECK(record["status"] == "finished");
    CHECK(record["exit_code"] == 0);
    CHECK(read_file(dir / "report" / "index.html").find("finished") != std::string::npos);
  }
  SECTION("an unknown unit") {
    CHECK(run({kBinary, "campaign", "run-unit", dir.string(), "nope"}, log) != 0);
    CHECK(read_file(log).find("no unit \"nope\" in this run") != std::string::npos);
  }
}

TEST_CASE("Ctrl-C during campaign run --jobs 2, then resume --jobs 2: the sequential numbers",
          "[parallel]") {
  const fs::path campaign = write_sweep(3);
  const fs::path dir = scratch("ctrlc"), log = scratch("ctrlc.log");
  const pid_t pid = metaplast::test::spawn(
      kBinary,
      {kBinary, "campaign", "run", campaign.string(), "--out", dir.string(), "--jobs", "2"}, log);
  METAPLAST_REQUIRE_FILE_FROM_CHILD(
      dir / "steps" / "sweep" / "seed=1" / "mstar=0" / "checkpoint.bin", pid, log);
  ::kill(pid, SIGINT);
  const int rc = metaplast::test::wait_exit(pid);
  INFO(read_file(log));
  REQUIRE(rc == 130);
  CHECK(read_json(dir / "record.json")["status"] == "interrupted");
  const json state = read_json(dir / "state.json");
  CHECK(state["steps"][7]["status"] == "pending");  // nothing started after the Ctrl-C

  const fs::path resume_log = scratch("ctrlc-resume.log");
  const int resumed = run({kBinary, "campaign", "resume", dir.string(), "--jobs", "2"}, resume_log);
  INFO(read_file(resume_log));
  REQUIRE(resumed == 0);
  const fs::path reference = scratch("ctrlc-reference"), ref_log = scratch("ctrlc-ref.log");
  REQUIRE(
      run({kBinary, "campaign", "run", campaign.string(), "--out", reference.string(), "--quiet"},
          ref_log) == 0);
  require_same_numbers(reference, dir);
  CHECK(read_json(dir / "record.json")["sessions"].size() == 2);
}
