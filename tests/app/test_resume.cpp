// Kill the real binary after its first checkpoint, resume it, and compare with an uninterrupted
// run: the numbers must be identical.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;

namespace {

using metaplast::test::read_file;
using metaplast::test::run;

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-resume", name);
}

std::vector<std::string> run_arguments(const fs::path& out) {
  return {kBinary,         "train",     "--tasks",  "mnist,fashion",
          "--epochs",      "2",         "--hidden", "256,128",
          "--train-limit", "4000",      "--seed",   "3",
          "--threads",     "2",         "--mstar",  "3",
          "--out",         out.string()};
}

}  // namespace

TEST_CASE("a run killed after an epoch and resumed ends with the uninterrupted numbers",
          "[resume]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path killed = fresh_dir("killed"), whole = fresh_dir("whole");
  const fs::path log = fresh_dir("log.txt");

  // Start the run to kill; its output goes to the log (shown if it fails before its checkpoint).
  const pid_t pid = metaplast::test::spawn(kBinary, run_arguments(killed), log);
  const fs::path checkpoint = killed / "checkpoint.bin";
  METAPLAST_REQUIRE_FILE_FROM_CHILD(checkpoint, pid, log);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  // Killed mid-run: 4 epochs in all, only the first checkpoint had appeared.
  REQUIRE_FALSE(fs::exists(killed / "summary.json"));

  // A mismatched option is refused, naming it.
  const int refused = run({kBinary, "train", "--resume", killed.string(), "--mstar", "1"}, log);
  CHECK(refused != 0);
  CHECK_THAT(read_file(log), Catch::Contains("--mstar") && Catch::Contains("differs"));
  // Also an option config.json leaves out at its first value (uniform), against this
  // (default, thresholds) run, and the other way round for one it leaves out here (lr-decay 1).
  for (const auto& option : {std::vector<std::string>{"--init-mode", "uniform"},
                             std::vector<std::string>{"--lr-decay", "0.5"}}) {
    const int refused_first_value =
        run({kBinary, "train", "--resume", killed.string(), option[0], option[1]}, log);
    CHECK(refused_first_value != 0);
    CHECK_THAT(read_file(log), Catch::Contains(option[0]) && Catch::Contains("differs"));
  }

  const int resumed = run({kBinary, "train", "--resume", killed.string()}, log);
  INFO(read_file(log));
  REQUIRE(resumed == 0);
  const int uninterrupted = run(run_arguments(whole), log);
  REQUIRE(uninterrupted == 0);

  const auto a = nlohmann::json::parse(read_file(killed / "summary.json"));
  const auto b = nlohmann::json::parse(read_file(whole / "summary.json"));
  CHECK(a["after_task"] == b["after_task"]);
  CHECK(a["final"] == b["final"]);
  CHECK(a["samples_trained"] == b["samples_trained"]);
  CHECK(read_file(killed / "metrics.csv") == read_file(whole / "metrics.csv"));
  for (const auto& d : {killed, whole, log}) fs::remove_all(d);
}
