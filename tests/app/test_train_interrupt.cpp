// Ctrl-C in `metaplast train`, with the real binary: the first SIGINT stops after the current
// epoch's checkpoint, prints the --resume command and exits 130; the second aborts after the
// step in flight. Resuming gives the numbers of an uninterrupted run.
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

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

using metaplast::test::read_file;

constexpr const char* kPrefix = "metaplast-train-interrupt";

// A path of this test's (kept: the uninterrupted reference is reused across cases).
fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() /
         (std::string(kPrefix) + "-" + std::to_string(::getpid()) + "-" + name);
}

fs::path scratch(const std::string& name) { return metaplast::test::scratch_path(kPrefix, name); }

// Two tasks x 3 epochs of `images` images, by default on virtual devices (their state is
// checkpointed exactly).
struct Size {
  std::string images = "3000", hidden = "64,32";
};

std::vector<std::string> train_args(const fs::path& out, const std::string& placement = "virtual",
                                    const Size& size = {}) {
  return {kBinary,         "train",     "--tasks",     "mnist,fashion", "--epochs",  "3",
          "--train-limit", size.images, "--hidden",    size.hidden,     "--threads", "1",
          "--seed",        "4",         "--placement", placement,       "--out",     out.string()};
}

// Epochs long enough (about a second) for two signals to land inside one.
const Size kSlow{"10000", "512,512"};

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  return metaplast::test::spawn(kBinary, args, log);
}

int run(const std::vector<std::string>& args, const fs::path& log) {
  return metaplast::test::run(args, log);
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// The uninterrupted reference of train_args(..., "virtual", size), run once per size.
fs::path uninterrupted(const Size& size) {
  const std::string name = "whole-" + size.images + "-" + size.hidden;
  const fs::path d = temp_path(name);
  if (fs::exists(d / "summary.json")) return d;
  fs::remove_all(d);
  const fs::path log = scratch(name + ".log");
  const int rc = run(train_args(d, "virtual", size), log);
  INFO(read_file(log));
  REQUIRE(rc == 0);
  fs::remove_all(log);
  return d;
}

void check_same_as_uninterrupted(const fs::path& resumed, const Size& size) {
  const fs::path whole = uninterrupted(size);
  REQUIRE(fs::exists(resumed / "summary.json"));
  CHECK(read_file(resumed / "metrics.csv") == read_file(whole / "metrics.csv"));
  const json r = json::parse(read_file(resumed / "summary.json"));
  const json w = json::parse(read_file(whole / "summary.json"));
  CHECK(r["after_task"] == w["after_task"]);
  CHECK(r["writes"]["total"] == w["writes"]["total"]);
  CHECK(r["writes"]["per_epoch"] == w["writes"]["per_epoch"]);
  fs::remove_all(whole);
}

// Runs `metaplast train --resume dir` (plus `extra` options) to its end, as the user is told
// to after a Ctrl-C; requires success and returns the output.
std::string resume_to_end(const fs::path& dir, const fs::path& log,
                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{kBinary, "train", "--resume", dir.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  const int rc = run(args, log);
  const std::string output = read_file(log);
  INFO(output);
  REQUIRE(rc == 0);
  return output;
}

}  // namespace

TEST_CASE("waiting for a child's file ends at once, with the child's output, when it fails",
          "[train][interrupt]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path dir = scratch("no-data"), log = scratch("no-data.log");
  std::vector<std::string> args = train_args(dir);
  args.insert(args.end(), {"--data", scratch("no-such-data").string()});
  const pid_t pid = spawn(args, log);
  // Before: the poll went on for 180 s and then said only that there was no checkpoint.
  const std::string why =
      metaplast::test::wait_for_file(dir / "checkpoint.bin", pid, log, std::chrono::seconds(600));
  CHECK_THAT(why, Catch::Contains("the child ended (exit status"));
  CHECK_THAT(why, Catch::Contains("no-such-data"));  // the child's own error message
  CHECK(wait_exit(pid) != 0);
  for (const auto& p : {dir, log}) fs::remove_all(p);
}

TEST_CASE("Ctrl-C in metaplast train stops after the epoch's checkpoint; --resume finishes it",
          "[train][interrupt]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path dir = scratch("stopped"), log = scratch("stopped.log");
  const pid_t pid = spawn(train_args(dir), log);
  METAPLAST_REQUIRE_FILE_FROM_CHILD(dir / "checkpoint.bin", pid, log);
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 130);
  const std::string output = read_file(log);
  INFO(output);
  CHECK_THAT(output, Catch::Contains("stopping after the current epoch's checkpoint"));
  CHECK_THAT(output, Catch::Contains("metaplast train --resume " + dir.string()));
  CHECK_FALSE(fs::exists(dir / "summary.json"));

  const fs::path resume_log = scratch("resume.log");
  const std::string resumed = resume_to_end(dir, resume_log);
  INFO(resumed);
  CHECK_THAT(resumed, Catch::Contains("after mnist") && Catch::Contains("memory:"));
  check_same_as_uninterrupted(dir, Size{});
  for (const auto& p : {dir, log, resume_log}) fs::remove_all(p);
}

TEST_CASE("a second Ctrl-C aborts after the step in flight; --resume still finishes exactly",
          "[train][interrupt]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path dir = scratch("aborted"), log = scratch("aborted.log");
  const pid_t pid = spawn(train_args(dir, "virtual", kSlow), log);
  // Into epoch 2: past epoch 1's checkpoint and its stop check (the log line comes between the
  // two; the checkpoint file alone appears before its fsync returns, which can take longer than
  // any fixed sleep on a loaded machine).
  const std::string waited = metaplast::test::wait_for_output("epoch 1/3 done", pid, log);
  INFO(waited);
  REQUIRE(waited.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // two signals, not one pending
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 130);
  const std::string output = read_file(log);
  INFO(output);
  CHECK_THAT(output, Catch::Contains("aborting after the step in flight"));
  CHECK_THAT(output, Catch::Contains("aborted during"));
  CHECK_THAT(output, Catch::Contains("metaplast train --resume " + dir.string()));
  CHECK_FALSE(fs::exists(dir / "summary.json"));

  const fs::path resume_log = scratch("resume2.log");
  INFO(resume_to_end(dir, resume_log));
  check_same_as_uninterrupted(dir, kSlow);
  for (const auto& p : {dir, log, resume_log}) fs::remove_all(p);
}

TEST_CASE("Ctrl-C twice during a run with a board layer leaves a board the run resumes on",
          "[train][interrupt]") {
  REQUIRE(fs::exists(kBinary));
  const fs::path dir = scratch("board"), log = scratch("board.log");
  // A simulated chip that keeps its cells across the two processes.
  const fs::path chip = scratch("chip.bin");
  const std::string device = "sim:?seed=3&formed=1&state=" + chip.string();
  std::vector<std::string> args = train_args(dir, "virtual,virtual,board");
  args.insert(args.end(), {"--device", device});
  const pid_t pid = spawn(args, log);
  METAPLAST_REQUIRE_FILE_FROM_CHILD(dir / "checkpoint.bin", pid, log);
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 130);
  INFO(read_file(log));
  CHECK_THAT(read_file(log), Catch::Contains("metaplast train --resume " + dir.string()));

  const fs::path resume_log = scratch("resume3.log");
  INFO(resume_to_end(dir, resume_log, {"--device", device}));
  const json summary = json::parse(read_file(dir / "summary.json"));
  CHECK(summary["status"] == "finished");
  CHECK(summary["writes"]["per_epoch"].size() == 6);
  CHECK(summary["store"]["placement"] == json({"virtual", "virtual", "board"}));
  for (const auto& p : {dir, log, resume_log, chip}) fs::remove_all(p);
}
