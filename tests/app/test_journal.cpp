// The program-batch journal: append-only records that survive a torn write, and a training run on
// the simulated board that journals every batch (the journal's pulses are the board's own pulse
// counters' increments) and writes one HDF5 snapshot per epoch; an ideal run writes neither.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "app/hil/journal.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-journal", name);
}

learning::TrainConfig small_config() {
  learning::TrainConfig c;
  c.tasks = {"mnist"};
  c.epochs = 2;
  c.hidden = {16};
  c.train_limit = 500;
  c.threads = 1;
  c.seed = 5;
  c.data_dir = learning::default_data_dir();
  return c;
}

}  // namespace

TEST_CASE("journal records survive a torn last write and are appended after it", "[journal]") {
  const fs::path dir = fresh_dir("file");
  fs::create_directories(dir);
  const fs::path file = dir / hil::kJournalFile;
  {
    hil::JournalFile journal(file);
    journal.append({{"type", "batch"}, {"seq", 1}});
    journal.append({{"type", "batch"}, {"seq", 2}});
  }
  // A host killed in the middle of a write.
  std::ofstream(file, std::ios::app) << R"({"type":"batch","se)";
  auto records = hil::JournalFile::read(file);
  REQUIRE(records.size() == 2);
  {
    hil::JournalFile journal(file);  // drops the torn line
    journal.append({{"type", "batch"}, {"seq", 3}});
  }
  records = hil::JournalFile::read(file);
  REQUIRE(records.size() == 3);
  CHECK(records[2]["seq"] == 3);

  // A damaged line elsewhere is an error naming the file and line.
  std::ofstream(file, std::ios::app) << "garbage\n"
                                     << R"({"type":"batch"})"
                                     << "\n";
  CHECK_THROWS_WITH(hil::JournalFile::read(file), Catch::Contains("line 4"));
  fs::remove_all(dir);
}

TEST_CASE("journal lines synced later are written at once, in order with the synced ones",
          "[journal]") {
  const fs::path dir = fresh_dir("later");
  fs::create_directories(dir);
  const fs::path file = dir / hil::kJournalFile;
  {
    hil::JournalFile journal(file);
    for (int seq = 1; seq <= 40; ++seq) {
      if (seq % 10 == 0) {
        journal.append({{"type", "checkpoint"}, {"seq", seq}});
      } else {
        journal.append_synced_later({{"type", "batch"}, {"seq", seq}});
        // Written before the call returns: a killed process loses no line.
        const auto records = hil::JournalFile::read(file);
        REQUIRE(records.size() == static_cast<std::size_t>(seq));
        CHECK(records.back()["seq"] == seq);
      }
      if (seq % 7 == 0) journal.wait_synced();
    }
    journal.append_synced_later({{"type", "batch"}, {"seq", 41}});
  }  // the destructor syncs the last line
  const auto records = hil::JournalFile::read(file);
  REQUIRE(records.size() == 41);
  for (int seq = 1; seq <= 41; ++seq) CHECK(records[seq - 1]["seq"] == seq);
  fs::remove_all(dir);
}

TEST_CASE("a failed background sync is reported by the next journal call, naming the file",
          "[journal]") {
  // /dev/null takes writes and refuses fdatasync (EINVAL), as a failing disk would.
  hil::JournalFile journal("/dev/null");
  journal.append_synced_later({{"type", "batch"}, {"seq", 1}});
  CHECK_THROWS_WITH(journal.wait_synced(),
                    Catch::Contains("/dev/null") && Catch::Contains("cannot sync"));
  CHECK_THROWS_WITH(journal.append_synced_later({{"type", "batch"}, {"seq", 2}}),
                    Catch::Contains("cannot sync"));
  CHECK_THROWS_WITH(journal.append({{"type", "end"}}), Catch::Contains("cannot sync"));
}  // and the destructor logs it without throwing

TEST_CASE("a board run journals every batch; its pulses are the board counters' increments",
          "[journal][hil]") {
  const fs::path dir = fresh_dir("board");
  learning::TrainConfig c = small_config();
  c.placement = "virtual,board";
  c.device = "sim:?seed=3&formed=1";
  const json summary = hil::run_training(c, dir, false);

  const auto records = hil::JournalFile::read(dir / hil::kJournalFile);
  REQUIRE(records.size() > 4);
  CHECK(records.front()["type"] == "start");
  CHECK(records.front()["counters_start"].size() == 128u * 128u);
  std::uint64_t journaled = 0, batches = 0, checkpoints = 0, snapshots = 0, initial = 0;
  for (const auto& r : records) {
    const std::string type = r["type"];
    if (type == "batch") {
      ++batches;
      REQUIRE(r["cells"].size() == r["pulses"].size());
      REQUIRE(r["cells"].size() == r["levels"].size());
      REQUIRE(r["cells"].size() == r["final_us"].size());
      CHECK(r["boot_id"] == records.front()["boot_id"]);
      for (const auto& p : r["pulses"]) journaled += p.get<std::uint64_t>();
      if (r["phase"] == "initial") ++initial;
    }
    checkpoints += type == "checkpoint";
    snapshots += type == "snapshot";
  }
  CHECK(initial >= 1);
  CHECK(batches > initial);  // training steps changed levels on the board
  CHECK(checkpoints == 2);
  CHECK(snapshots == 2);

  const json& board = summary["writes"]["board"];
  CHECK(board["layer_writes"].get<std::uint64_t>() == journaled);
  CHECK(board["cell_writes"].get<std::uint64_t>() == journaled);
  CHECK(board["counter_increments"].get<std::uint64_t>() == journaled);
  CHECK(summary["writes"]["recovered_after_crash"] == 0);

  CHECK(fs::exists(dir / "snapshots" / "epoch_0001.h5"));
  CHECK(fs::exists(dir / "snapshots" / "epoch_0002.h5"));
  CHECK_FALSE(fs::exists(dir / "snapshots" / "epoch_0002.h5.tmp"));
  CHECK(fs::file_size(dir / "cell_writes.csv") > 20);
  // The conductance map of the output layer's 16 x 10 cells.
  std::ifstream csv(dir / "conductances.csv");
  std::string line;
  std::size_t rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 1 + 16 * 10);
  fs::remove_all(dir);
}

TEST_CASE("a run without board layers writes no journal and no snapshot", "[journal]") {
  const fs::path dir = fresh_dir("ideal");
  learning::TrainConfig c = small_config();
  c.epochs = 1;
  hil::run_training(c, dir, false);
  CHECK(fs::exists(dir / "summary.json"));
  CHECK_FALSE(fs::exists(dir / hil::kJournalFile));
  CHECK_FALSE(fs::exists(dir / "snapshots"));
  fs::remove_all(dir);
}
