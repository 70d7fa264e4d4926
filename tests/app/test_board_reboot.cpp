// Board reboots during a training run (docs/run-records.md, "Board reboots"): a reboot at any
// request of a short hybrid run is recovered, the run finishes, and per cell the run's writes
// (cell_writes.csv), the journal's pulses and the board's own counter increments are equal. A run
// that stops before its first checkpoint leaves a folder that a rerun or --resume starts over.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "app/hil/journal.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The first `count` records of an IDX file (header + `record_bytes` per record).
void copy_idx_head(const fs::path& from, const fs::path& to, std::size_t header_bytes,
                   std::size_t record_bytes, std::uint32_t count) {
  std::ifstream in(from, std::ios::binary);
  std::string bytes(header_bytes + count * record_bytes, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(in);
  for (int k = 0; k < 4; ++k) bytes[4 + k] = static_cast<char>((count >> (24 - 8 * k)) & 0xff);
  std::ofstream(to, std::ios::binary) << bytes;
}

// MNIST cut to 40 training and 20 test images: the runs' time goes to the board, not the data.
const fs::path& tiny_data_dir() {
  static const fs::path dir = [] {
    const fs::path d = test::scratch_path("metaplast-reboot", "data");
    const fs::path from = learning::default_data_dir() / "mnist";
    fs::create_directories(d / "mnist");
    for (const auto& [prefix, n] : {std::pair{"train", 40u}, std::pair{"t10k", 20u}}) {
      const std::string p = prefix;
      copy_idx_head(from / (p + "-images-idx3-ubyte"), d / "mnist" / (p + "-images-idx3-ubyte"), 16,
                    28 * 28, n);
      copy_idx_head(from / (p + "-labels-idx1-ubyte"), d / "mnist" / (p + "-labels-idx1-ubyte"), 8,
                    1, n);
    }
    return d;
  }();
  return dir;
}

// The smallest run that still uses the board: 8 x 10 output weights on the board, 2 steps.
learning::TrainConfig tiny_hybrid_run(const std::string& device) {
  learning::TrainConfig c;
  c.tasks = {"mnist"};
  c.epochs = 1;
  c.hidden = {8};
  c.train_limit = 40;
  c.batch = 20;
  c.threads = 1;
  c.seed = 3;
  c.placement = "virtual,board";
  c.device = device;
  c.data_dir = tiny_data_dir();
  return c;
}

// PATH without gnuplot while alive: the runs' plots fail fast (a warning) instead of costing a
// third of each run of the sweep.
class NoGnuplot {
 public:
  NoGnuplot() : path_(std::getenv("PATH") ? std::getenv("PATH") : "") {
    ::setenv("PATH", "/nonexistent", 1);
  }
  ~NoGnuplot() { ::setenv("PATH", path_.c_str(), 1); }

 private:
  std::string path_;
};

struct RunCounts {
  std::map<std::uint32_t, std::uint64_t> run, journal, board;  // per cell, non-zero only
  std::uint64_t reboots = 0, reboot_records = 0, requests = 0;
};

// Per cell: cell_writes.csv, the journal's batch pulses, the board's counters end minus start.
RunCounts counts_of(const fs::path& dir, const json& summary) {
  RunCounts out;
  std::ifstream csv(dir / "cell_writes.csv");
  std::string line;
  std::getline(csv, line);  // header
  while (std::getline(csv, line)) {
    std::istringstream row(line);
    std::uint32_t r = 0, c = 0;
    std::uint64_t writes = 0;
    char comma = 0;
    row >> r >> comma >> c >> comma >> writes;
    out.run[r * 128 + c] = writes;
  }
  std::vector<std::uint64_t> start, end;
  for (const auto& record : hil::JournalFile::read(dir / hil::kJournalFile)) {
    const std::string type = record["type"];
    if (type == "start") start = record["counters_start"].get<std::vector<std::uint64_t>>();
    if (type == "end") {
      end = record["counters_end"].get<std::vector<std::uint64_t>>();
      out.requests = record["requests_sent"];
    }
    out.reboot_records += type == "reboot";
    if (type != "batch") continue;
    for (std::size_t i = 0; i < record["cells"].size(); ++i) {
      const std::uint64_t pulses = record["pulses"][i];
      if (pulses > 0) out.journal[record["cells"][i].get<std::uint32_t>()] += pulses;
    }
  }
  REQUIRE(start.size() == 128u * 128u);
  REQUIRE(end.size() == start.size());
  for (std::uint32_t c = 0; c < start.size(); ++c) {
    if (end[c] != start[c]) out.board[c] = end[c] - start[c];
  }
  out.reboots = summary["writes"]["reboots_reconciled"];
  return out;
}

}  // namespace

TEST_CASE("a board reboot at every request of a short hybrid run loses no pulse", "[reboot][hil]") {
  const NoGnuplot no_plots;
  // Without reboots first: how many requests the run makes.
  const fs::path dir = test::scratch_path("metaplast-reboot", "sweep");
  const json clean = hil::run_training(tiny_hybrid_run("sim:?seed=1&formed=1"), dir, false);
  const RunCounts reference = counts_of(dir, clean);
  CHECK(reference.reboots == 0);
  CHECK(reference.run == reference.board);
  REQUIRE(reference.board.size() > 40);  // the run did program the board
  REQUIRE(reference.requests > 20);
  fs::remove_all(dir);

  // Every position, the board's state in memory only or also in a state file (as a board
  // whose chip state survives a power cycle on disk); +2: the safe state and watchdog at close.
  for (const bool state_file : {false, true}) {
    for (std::uint64_t at = 1; at <= reference.requests + 2; ++at) {
      const fs::path state = test::scratch_path("metaplast-reboot", "state.bin");
      std::string device = "sim:?seed=1&formed=1&reboot_at=" + std::to_string(at);
      if (state_file) device += "&state=" + state.string();
      INFO("device " << device);
      json summary;
      REQUIRE_NOTHROW(summary = hil::run_training(tiny_hybrid_run(device), dir, false));
      CHECK(summary["status"] == "finished");
      const RunCounts counts = counts_of(dir, summary);
      CHECK(counts.run == counts.journal);
      CHECK(counts.run == counts.board);
      // Position 1 is the first IDENTIFY (no earlier boot to compare with); those after the
      // last request of the run fall into the safe state at close.
      if (at > 1 && at <= reference.requests) CHECK(counts.reboots == 1);
      // Requests 1-4 (IDENTIFY, SET_LEVELS, CONFIGURE, WATCHDOG_ARM) open the board before the
      // journal exists; every later reboot has its record.
      if (at > 4) CHECK(counts.reboot_records == counts.reboots);
      const json& board = summary["writes"]["board"];
      CHECK(board["cell_writes"] == board["counter_increments"]);
      CHECK(board["layer_writes"] == board["counter_increments"]);
      fs::remove_all(dir);
      fs::remove(state);
    }
  }
}

TEST_CASE("a reboot in the middle of a program-and-verify batch is journaled with its pulses",
          "[reboot][hil]") {
  // Position 46 of this run is a program-and-verify chunk of the initial programming (the
  // requests before it: identify, level table, configure, watchdog, 41 READ_COUNTERS of the
  // start counters).
  const fs::path dir = test::scratch_path("metaplast-reboot", "batch");
  const json summary =
      hil::run_training(tiny_hybrid_run("sim:?seed=1&formed=1&reboot_at=46"), dir, false);
  const RunCounts counts = counts_of(dir, summary);
  CHECK(counts.reboots == 1);
  CHECK(counts.run == counts.board);
  std::uint64_t reboot_pulses = 0;
  for (const auto& record : hil::JournalFile::read(dir / hil::kJournalFile)) {
    if (record["type"] != "reboot") continue;
    CHECK(record["operation"] == "program-and-verify");
    CHECK(record["boot_id"] != record["old_boot_id"]);
    reboot_pulses += record["pulses_total"].get<std::uint64_t>();
  }
  CHECK(reboot_pulses > 0);  // the board pulsed half the chunk before it reset
  fs::remove_all(dir);
}

TEST_CASE("a run that stops before its first checkpoint is started over by a rerun or --resume",
          "[reboot][resume]") {
  const fs::path dir = test::scratch_path("metaplast-reboot", "stopped");
  const auto run = tiny_hybrid_run("sim:?seed=1&formed=1");
  // Stopped at its first training step (Ctrl-C twice): the board was programmed, the journal and
  // config.json written, no checkpoint yet.
  const std::atomic<bool> abort_now{true};
  learning::RunControl stop;
  stop.abort_now = &abort_now;
  auto stop_early = [&] {
    CHECK_THROWS_AS(hil::run_training(run, dir, false, stop), learning::RunAborted);
    REQUIRE(fs::exists(dir / hil::kJournalFile));
    REQUIRE(fs::exists(dir / learning::kConfigFile));
    REQUIRE_FALSE(fs::exists(dir / learning::kCheckpointFile));
  };

  SECTION("the same --out again starts over, keeping the stopped attempt's journal") {
    stop_early();
    const json rerun = hil::run_training(run, dir, false);
    CHECK(rerun["status"] == "finished");
    CHECK(fs::exists(dir / "journal.stopped-1.jsonl"));
    const RunCounts counts = counts_of(dir, rerun);
    CHECK(counts.run == counts.board);
    CHECK(counts.run == counts.journal);
  }
  SECTION("--resume starts over") {
    stop_early();
    const json resumed = hil::run_training(run, dir, true);
    CHECK(resumed["status"] == "finished");
    CHECK(fs::exists(dir / "journal.stopped-1.jsonl"));
  }
  SECTION("a run stopped before its config.json: the same --out again starts over") {
    stop_early();
    fs::remove(dir / learning::kConfigFile);  // as if killed during the initial programming
    const json rerun = hil::run_training(run, dir, false);
    CHECK(rerun["status"] == "finished");
  }
  fs::remove_all(dir);
}
