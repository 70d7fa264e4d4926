// Chip identity (app/hil/chip_registry.hpp chip_id_for_board): --chip, else the station's chip,
// else the board's serial; a simulated board reports one serial per seed and per state file, so
// two simulated chips never share a chip record; no id at all is refused; a train session's
// "cells" counts board cells.
#include <signal.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/board/board_session.hpp"
#include "app/cli/commands.hpp"
#include "app/hil/chip_registry.hpp"
#include "sim/server.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;

namespace {

const std::string kSimboard = METAPLAST_BINARY_DIR "/bin/metaplast-simboard";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-chip-identity", name);
}

void metaplast_cli(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  cli::add_characterize_command(app);
  cli::add_train_command(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
}

std::string serial_of(const std::string& address) {
  board::SessionOptions s;
  s.device = address;
  auto b = board::open_board(s);
  const std::string serial = b->info().serial;
  b->close();
  return serial;
}

// metaplast-simboard --tcp on a free port, seed 1.
class TcpBoard {
 public:
  TcpBoard()
      : process_(metaplast::test::SimboardProcess::Link::tcp, scratch("simboard.log"),
                 {"--formed", "--seed", "1"}) {}
  const std::string& address() const { return process_.address(); }

 private:
  metaplast::test::SimboardProcess process_;
};

}  // namespace

TEST_CASE("a simulated chip's serial: one per seed and per state file", "[chip]") {
  const std::optional<fs::path> none;
  CHECK(sim::simulated_board_serial("SIM-0001", 7, none) == "SIM-0001-s7");
  CHECK(sim::simulated_board_serial("SIM-0001", 1, none) !=
        sim::simulated_board_serial("SIM-0001", 7, none));
  const auto a = sim::simulated_board_serial("SIM-0001", 7, fs::path("/tmp/a.state"));
  const auto b = sim::simulated_board_serial("SIM-0001", 7, fs::path("/tmp/b.state"));
  CHECK(a != b);
  CHECK(a != sim::simulated_board_serial("SIM-0001", 7, none));
  CHECK(a == sim::simulated_board_serial("SIM-0001", 7, fs::path("/tmp/./a.state")));
  // Always within IDENTIFY's 32 bytes, the seed and state part kept whole.
  const auto longest =
      sim::simulated_board_serial(std::string(40, 'X'), UINT64_MAX, fs::path("/tmp/a.state"));
  CHECK(longest.size() <= 32);
  CHECK(longest.substr(longest.size() - 9) == a.substr(a.size() - 9));

  CHECK(serial_of("sim:?seed=7") == "SIM-0001-s7");
  CHECK(serial_of("sim:?seed=7") != serial_of("sim:?seed=1"));
  const fs::path state = scratch("chip.state");
  const std::string kept = serial_of("sim:?seed=7&state=" + state.string());
  CHECK(kept != serial_of("sim:?seed=7"));
  CHECK(serial_of("sim:?seed=7&state=" + state.string()) == kept);  // the same chip again
  fs::remove_all(state);
}

TEST_CASE("the chip id: --chip, the station's, the board's serial; none at all is refused",
          "[chip]") {
  CHECK(hil::chip_id_for_board("W1", "S1", "X") == "W1");
  CHECK(hil::chip_id_for_board("", "S1", "X") == "S1");
  CHECK(hil::chip_id_for_board("", "", "X/1") == "board-X_1");
  CHECK_THROWS_WITH(hil::chip_id_for_board("", "", ""), Catch::Contains("no chip id") &&
                                                            Catch::Contains("--chip") &&
                                                            Catch::Contains("\"chip\""));
  CHECK_THROWS_AS(hil::chip_id_for_board("../x", "", "X"), std::invalid_argument);
}

TEST_CASE("two simulated boards of different seeds never share a chip record", "[chip]") {
  REQUIRE(fs::exists(kSimboard));
  const fs::path chips = scratch("chips"), c7 = scratch("c7"), c1 = scratch("c1");
  TcpBoard tcp;
  const std::vector<std::string> small = {"--cells",        "8", "--cycles",    "2",
                                          "--read-repeats", "0", "--chips-dir", chips.string()};
  auto in_process = std::vector<std::string>{"characterize", "--device", "sim:?seed=7&formed=1",
                                             "--out", c7.string()};
  in_process.insert(in_process.end(), small.begin(), small.end());
  metaplast_cli(in_process);
  auto over_tcp = std::vector<std::string>{"characterize", "--device", tcp.address(),
                                           "--yes",        "--out",    c1.string()};
  over_tcp.insert(over_tcp.end(), small.begin(), small.end());
  metaplast_cli(over_tcp);

  std::set<std::string> records;
  for (const auto& e : fs::directory_iterator(chips)) {
    if (e.path().extension() == ".json") records.insert(e.path().filename().string());
  }
  CHECK(records == std::set<std::string>{"board-SIM-0001-s7.json", "board-SIM-0001-s1.json"});
  hil::ChipRegistry registry(chips);
  CHECK(registry.load("board-SIM-0001-s7")->sessions.size() == 1);
  CHECK(registry.load("board-SIM-0001-s1")->sessions.size() == 1);

  // Seed 7's calibration does not make the seed-1 chip seed 7's (as it did when the chip id was
  // taken from the calibration): refused, and the record of seed 1 gains no session.
  CHECK_THROWS_WITH(
      metaplast_cli({"train",
                     "--tasks",
                     "mnist",
                     "--epochs",
                     "1",
                     "--train-limit",
                     "200",
                     "--hidden",
                     "8",
                     "--threads",
                     "1",
                     "--placement",
                     "virtual,board",
                     "--device",
                     tcp.address(),
                     "--yes",
                     "--calibration",
                     (c7 / "calibration.json").string(),
                     "--chips-dir",
                     chips.string(),
                     "--out",
                     scratch("t1").string()}),
      Catch::Contains("'board-SIM-0001-s7'") && Catch::Contains("'board-SIM-0001-s1'"));
  CHECK(registry.load("board-SIM-0001-s1")->sessions.size() == 1);
  fs::remove_all(scratch("t1"));
  for (const auto& p : {chips, c7, c1}) fs::remove_all(p);
}

TEST_CASE("a train session's cells are the board cells it used, not the network's weights",
          "[chip]") {
  const fs::path chips = scratch("train-chips"), out = scratch("train");
  metaplast_cli({"train", "--tasks", "mnist", "--epochs", "1", "--train-limit", "300", "--hidden",
                 "8", "--threads", "1", "--placement", "virtual,board", "--device",
                 "sim:?seed=3&formed=1", "--chips-dir", chips.string(), "--out", out.string()});
  const auto record = hil::ChipRegistry(chips).load("board-SIM-0001-s3");
  REQUIRE(record);
  REQUIRE_FALSE(record->sessions.empty());
  CHECK(record->sessions.back().kind == "train");
  // The output layer's 8 x 10 cells, and the cells that replaced those found bad on the way; the
  // 784 x 8 devices of the hidden layer are virtual.
  CHECK(record->sessions.back().cells == 8 * 10 + record->bad_cells.size());
  CHECK(record->bad_cells.size() < 10);
  for (const auto& p : {chips, out}) fs::remove_all(p);
}
