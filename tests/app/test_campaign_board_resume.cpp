// Crash-safe resume with a board that outlives the host: a `metaplast-simboard` process serves the
// chip over TCP, `metaplast train` puts the output layer on it and is killed -9 during its second
// epoch (after the first checkpoint); `metaplast train --resume` re-identifies the chip (another
// chip is refused), reads the placed cells back, reprograms those out of band and takes the
// pulses of the lost partial epoch from the board's counters. Checked against the board's own
// counters (read by the test) and an uninterrupted run on a fresh board with the same seeds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "app/hil/journal.hpp"
#include "devices/calibration.hpp"
#include "instruments/array_board.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using metaplast::test::read_file;
using metaplast::test::spawn;
using metaplast::test::wait_exit;

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";
const std::string kSimboard = METAPLAST_BINARY_DIR "/bin/metaplast-simboard";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-board-resume", name);
}

// A simulated board process that outlives the hosts talking to it, as a real board does.
class SimboardProcess {
 public:
  SimboardProcess(const std::string& name, const std::vector<std::string>& extra = {})
      : process_(
            metaplast::test::SimboardProcess::Link::tcp, scratch(name + ".simboard.log"),
            with_extra({"--formed", "--seed", "9", "--state", scratch(name + ".state").string()},
                       extra)) {}
  const std::string& address() const { return process_.address(); }

  // The board's own SET + RESET counters of every cell, read over the link as any host would.
  std::vector<std::uint64_t> counters() const {
    std::vector<std::uint64_t> out;
    for (const auto& c : process_.counters()) out.push_back(c.programming_operations());
    return out;
  }

 private:
  static std::vector<std::string> with_extra(std::vector<std::string> args,
                                             const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  metaplast::test::SimboardProcess process_;
};

std::vector<std::string> train_args(const std::string& address, const fs::path& chips) {
  return {kBinary,     "train", "--tasks",       "mnist", "--epochs",    "3",
          "--hidden",  "32",    "--train-limit", "1500",  "--seed",      "3",
          "--threads", "1",     "--device",      address, "--chips-dir", chips.string(),
          "--yes"};
}

// Waits until the journal holds a training batch after the first checkpoint record.
bool wait_for_second_epoch(const fs::path& journal, pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    bool checkpoint = false;
    try {
      for (const auto& r : hil::JournalFile::read(journal)) {
        if (r["type"] == "checkpoint") checkpoint = true;
        if (checkpoint && r["type"] == "batch" && r["phase"] == "train") return true;
      }
    } catch (const std::exception&) {
      // A line being written: read again.
    }
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::uint64_t total_increment(const std::vector<std::uint64_t>& before,
                              const std::vector<std::uint64_t>& after) {
  REQUIRE(before.size() == after.size());
  std::uint64_t n = 0;
  for (std::size_t c = 0; c < before.size(); ++c) n += after[c] - before[c];
  return n;
}

}  // namespace

TEST_CASE("kill -9 of the host mid-epoch on a board process, resume: in band, every write counted",
          "[campaign][resume][board]") {
  REQUIRE(fs::exists(kBinary));
  REQUIRE(fs::exists(kSimboard));
  const fs::path chips = scratch("chips");

  // The uninterrupted reference on a fresh board of the same chip model and seed.
  double reference_accuracy = 0.0;
  {
    SimboardProcess board("reference");
    const fs::path dir = scratch("reference"), log = scratch("reference.log");
    auto args = train_args(board.address(), chips);
    args.insert(args.end(), {"--out", dir.string()});
    const int rc = wait_exit(spawn(kBinary, args, log));
    INFO(read_file(log));
    REQUIRE(rc == 0);
    reference_accuracy =
        json::parse(read_file(dir / "summary.json"))["final"]["mnist"].get<double>();
    fs::remove_all(dir);
    fs::remove_all(log);
  }

  SimboardProcess board("killed");
  const auto counters_before = board.counters();
  const fs::path dir = scratch("killed"), log = scratch("killed.log");
  auto args = train_args(board.address(), chips);
  args.insert(args.end(), {"--out", dir.string()});
  const pid_t host = spawn(kBinary, args, log);
  const bool in_second_epoch = wait_for_second_epoch(dir / hil::kJournalFile, host);
  INFO(read_file(log));
  REQUIRE(in_second_epoch);
  ::kill(host, SIGKILL);
  int status = 0;
  ::waitpid(host, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE_FALSE(fs::exists(dir / "summary.json"));

  // Another chip does not hold the run's weights: refused, nothing programmed, still resumable.
  {
    const fs::path calibration = scratch("other-chip.json");
    devices::Calibration other = devices::Calibration::defaults();
    other.identity.board_serial = "SIM-OTHER";
    devices::save_calibration(other, calibration);
    SimboardProcess other_board("other", {"--calibration", calibration.string()});
    const auto other_before = other_board.counters();
    const fs::path refused_log = scratch("refused.log");
    const int rc = wait_exit(spawn(kBinary,
                                   {kBinary, "train", "--resume", dir.string(), "--device",
                                    other_board.address(), "--chips-dir", chips.string(), "--yes"},
                                   refused_log));
    const std::string output = read_file(refused_log);
    INFO(output);
    CHECK(rc != 0);
    CHECK_THAT(output, Catch::Contains("another chip"));
    CHECK(total_increment(other_before, other_board.counters()) == 0);
    fs::remove_all(calibration);
    fs::remove_all(refused_log);
  }

  // The board's address from a station file, as on a bench.
  const fs::path station = scratch("resume-station.json");
  std::ofstream(station) << json({{"instruments",
                                   {{"array",
                                     {{"type", "array-board"}, {"address", board.address()}}}}}})
                                .dump();
  const fs::path resume_log = scratch("resume.log");
  const int resumed = wait_exit(spawn(kBinary,
                                      {kBinary, "train", "--resume", dir.string(), "--station",
                                       station.string(), "--chips-dir", chips.string(), "--yes"},
                                      resume_log));
  INFO(read_file(resume_log));
  REQUIRE(resumed == 0);
  const json summary = json::parse(read_file(dir / "summary.json"));

  // The resume record: every placed cell back in its band; the lost epoch's pulses recovered.
  json resume;
  std::size_t resume_records = 0;
  for (const auto& r : hil::JournalFile::read(dir / hil::kJournalFile)) {
    if (r["type"] == "resume") {
      resume = r;
      ++resume_records;
    }
  }
  REQUIRE(resume_records == 1);
  CHECK(resume["checkpoint"]["epochs_done"] == 1);
  CHECK(resume["placed_cells"] == 32 * 10);
  INFO(resume.dump());
  CHECK(resume["placed_cells_in_band"] == resume["placed_cells"]);
  CHECK(resume["journaled_after_checkpoint"].get<std::uint64_t>() > 0);
  CHECK(resume["recovered_writes"].get<std::uint64_t>() >=
        resume["journaled_after_checkpoint"].get<std::uint64_t>());
  CHECK(resume["board_rebooted"] == false);

  // No write uncounted: the run's writes are the board's own counter increments.
  const std::uint64_t increments = total_increment(counters_before, board.counters());
  const json& writes = summary["writes"];
  CHECK(writes["board"]["counter_increments"].get<std::uint64_t>() == increments);
  CHECK(writes["board"]["layer_writes"].get<std::uint64_t>() == increments);
  CHECK(writes["board"]["cell_writes"].get<std::uint64_t>() == increments);
  CHECK(writes["recovered_after_crash"] == resume["recovered_writes"]);

  // Snapshots of all three epochs (the one of epoch 2 written by the resumed session).
  for (const char* file : {"epoch_0001.h5", "epoch_0002.h5", "epoch_0003.h5"}) {
    CHECK(fs::exists(dir / "snapshots" / file));
  }

  const double accuracy = summary["final"]["mnist"].get<double>();
  CHECK(std::abs(accuracy - reference_accuracy) <= 0.01);
  for (const auto& p : {dir, log, resume_log, chips, station}) fs::remove_all(p);
}

TEST_CASE("campaign resume of a board train step after kill -9 of the host: writes reconciled",
          "[campaign][resume][board]") {
  REQUIRE(fs::exists(kBinary));
  REQUIRE(fs::exists(kSimboard));
  SimboardProcess board("campaign");
  const auto counters_before = board.counters();
  const fs::path chips = scratch("campaign-chips"), station = scratch("station.json"),
                 campaign = scratch("campaign.json"), dir = scratch("campaign-run");
  // Its "allow_pulses" (recorded in the run directory) lets `run` and `resume` pulse the board.
  std::ofstream(station) << json({{"station", "simulated bench"},
                                  {"allow_pulses", true},
                                  {"instruments",
                                   {{"array",
                                     {{"type", "array-board"}, {"address", board.address()}}}}}})
                                .dump();
  std::ofstream(campaign) << json({{"campaign", "board-resume"},
                                   {"steps",
                                    {{{"id", "t"},
                                      {"type", "train"},
                                      {"tasks", {"mnist"}},
                                      {"epochs", 3},
                                      {"hidden", {32}},
                                      {"train-limit", 1500},
                                      {"seed", 3},
                                      {"threads", 1},
                                      {"placement", "virtual,board"},
                                      {"chips-dir", chips.string()}}}}})
                                 .dump();
  const fs::path log = scratch("campaign.log");
  const pid_t host = spawn(kBinary,
                           {kBinary, "campaign", "run", campaign.string(), "--station",
                            station.string(), "--out", dir.string()},
                           log);
  const bool in_second_epoch = wait_for_second_epoch(dir / "steps" / "t" / hil::kJournalFile, host);
  INFO(read_file(log));
  REQUIRE(in_second_epoch);
  ::kill(host, SIGKILL);
  ::waitpid(host, nullptr, 0);

  const fs::path resume_log = scratch("campaign-resume.log");
  const int rc =
      wait_exit(spawn(kBinary, {kBinary, "campaign", "resume", dir.string()}, resume_log));
  INFO(read_file(resume_log));
  REQUIRE(rc == 0);
  const json summary = json::parse(read_file(dir / "steps" / "t" / "summary.json"));
  std::size_t resumes = 0;
  for (const auto& r : hil::JournalFile::read(dir / "steps" / "t" / hil::kJournalFile)) {
    if (r["type"] != "resume") continue;
    ++resumes;
    CHECK(r["placed_cells_in_band"] == r["placed_cells"]);
    CHECK(r["recovered_writes"].get<std::uint64_t>() > 0);
  }
  CHECK(resumes == 1);
  const std::uint64_t increments = total_increment(counters_before, board.counters());
  CHECK(summary["writes"]["board"]["layer_writes"].get<std::uint64_t>() == increments);
  CHECK(summary["writes"]["board"]["counter_increments"].get<std::uint64_t>() == increments);
  for (const auto& p : {chips, station, campaign, dir, log, resume_log}) fs::remove_all(p);
}
